"""The protobuf-free kernel shared by node and coordinator.

Identities, request signing, key files, atomic files and TOML, and the domain messages
that the wire package converts to and from protobuf. It imports `privacy` and never
protobuf or gRPC.
"""
