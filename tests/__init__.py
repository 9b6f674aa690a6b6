"""recnb's tests, one folder per subpackage (base, data, evaluation, models, viz, teaching); shared code in helpers."""
