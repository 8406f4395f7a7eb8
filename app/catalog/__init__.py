"""The model catalogue: ``GET /v1/models`` lists the models this server can run agents on."""
