"""The gRPC edge: generated code (v1/), converters, thin servicers, the server."""
