"""Wire schemas: the JSON shapes the control plane, the worker, the runtime and the SDK exchange.

Pydantic only, no ORM: the worker and the runtime import these without the server.
"""
