MAX_BODY_BYTES = 1024 * 1024
# aiohttp's HTTP parser refuses a longer request line or header field with its
# own text/plain 400 before any middleware sees the request (aiohttp's default,
# set explicitly so that /openapi.json can say it).
MAX_LINE_BYTES = 8190
