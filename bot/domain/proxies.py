"""Which proxy a request to a URL goes through, from the proxy variables as Python's urllib reads them
(`urllib.request.getproxies_environment()`: `{"https": ..., "http": ..., "no": ...}` from HTTPS_PROXY, HTTP_PROXY
and NO_PROXY, the lowercase spelling winning when both are set).

One rule for Slack and Shopify alike. slack_sdk on its own takes HTTPS_PROXY (else HTTP_PROXY) for every request and
ignores NO_PROXY; this keeps its choice of proxy and adds NO_PROXY, read as urllib reads it: `*` alone for every host,
else a comma-separated list of hosts, `host:port`s and domains (`example.com` and `.example.com` both cover
`api.example.com`), with no CIDR ranges.
"""

from __future__ import annotations

from collections.abc import Mapping
from urllib.parse import urlsplit
from urllib.request import proxy_bypass_environment


def proxy_for(url: str, proxies: Mapping[str, str]) -> str | None:
    """The proxy for `url`: None when NO_PROXY names its host or no proxy is set; otherwise the HTTPS proxy, else the
    HTTP proxy, whatever the URL's scheme (slack_sdk's choice)."""
    proxy = proxies.get("https") or proxies.get("http")
    if not proxy:
        return None
    parts = urlsplit(url)
    host = (parts.hostname or "").lower()
    # urllib compares NO_PROXY's entries with the host alone and, when given one, with `host:port` too
    if proxy_bypass_environment(f"{host}:{parts.port}" if parts.port else host, dict(proxies)):
        return None
    return proxy
