"""The step operators: one ``tasks`` CLI argv, run as a Kubernetes pod or a local subprocess."""
