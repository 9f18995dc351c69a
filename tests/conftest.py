"""Settings every test process needs before the layer is imported: the observability
objects read them when they are created (in Lambda, template.yaml's Globals set them)."""

import os

os.environ.setdefault("POWERTOOLS_SERVICE_NAME", "cashew")
os.environ.setdefault("POWERTOOLS_METRICS_NAMESPACE", "Cashew")
