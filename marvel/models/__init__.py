"""Models with the scikit-learn classifier API; configured in conf/model/*.yaml."""
