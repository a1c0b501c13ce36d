"""The Lambda runtime and architecture, in one place.

The dependency layer is built for exactly this pair (pip's --python-version/--platform come
from here), so changing one without the other cannot produce a layer that fails to import.
The code itself runs on this runtime and on the local Python (3.11+): CI runs it on the latter.
"""

from __future__ import annotations

from aws_cdk import aws_lambda as lambda_

RUNTIME = lambda_.Runtime.PYTHON_3_14
ARCHITECTURE = lambda_.Architecture.X86_64
PYTHON_VERSION = "3.14"
PIP_PLATFORM = "manylinux2014_x86_64"
