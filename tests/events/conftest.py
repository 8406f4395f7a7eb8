from tests.support.fixtures import (
    manual_async_client,
    manual_client,
    manual_database_url,
    manual_http,
    manual_server,
    producer,
)

__all__ = [
    "manual_async_client",
    "manual_client",
    "manual_database_url",
    "manual_http",
    "manual_server",
    "producer",
]
