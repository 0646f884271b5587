"""The aiohttp front end: validate, authenticate, authorize, delegate."""
