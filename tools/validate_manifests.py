#!/usr/bin/env python3
"""Validates every manifest of the given stores against the format's JSON Schema.

    python3 tools/validate_manifests.py SCHEMA STORE [STORE …]"""
import json
import sys
from pathlib import Path

import jsonschema

schema = json.loads(Path(sys.argv[1]).read_text())
count = 0
for store in sys.argv[2:]:
    for manifest in sorted(Path(store, "models").glob("*.json")):
        jsonschema.validate(json.loads(manifest.read_text()), schema)
        count += 1
if count == 0:
    sys.exit("no manifests found")
print(f"validate_manifests.py: {count} manifests valid against {sys.argv[1]}")
