"""The HTTP shell: FastAPI app factory and one router per resource."""
