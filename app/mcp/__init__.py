"""MCP servers the agent uses: connections from the server side (as the hosted service makes
them), tool naming, permissions, content mapping and vault credentials. The agent loop talks to
this package through ``McpHub`` alone."""
