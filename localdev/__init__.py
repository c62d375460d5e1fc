"""Local development only, never in an image: Argo CD's part on one machine (``localdev.argocd``) and ``make demo``'s
last part (``localdev.demo``)."""
