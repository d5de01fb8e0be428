"""Page sizes every layer agrees on: the pagination helper applies them, the GraphQL cost limit estimates with them."""

DEFAULT_PAGE_SIZE = 100
MAX_PAGE_SIZE = 1000
