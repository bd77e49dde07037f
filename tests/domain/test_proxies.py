"""Which proxy a request goes through: HTTPS_PROXY (else HTTP_PROXY), unless NO_PROXY names the URL's host."""

from __future__ import annotations

from urllib.request import getproxies_environment

import pytest

from bot.domain.proxies import proxy_for

PROXY = "http://proxy.internal:3128"


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1:38961/api/",  # a host listed
        "http://LOCALHOST:8080/",  # hosts compare without case
        "https://hooks.corp.example/x",  # a domain listed with a leading dot
        "https://corp.example/x",  # ... covers the domain itself
        "https://api.shop.example/admin",  # a domain listed without one
        "https://files.internal:8443/upload",  # a host:port listed
    ],
)
def test_a_host_no_proxy_names_goes_straight_there(url: str):
    proxies = {"https": PROXY, "no": "127.0.0.1, localhost,.corp.example,shop.example,files.internal:8443"}
    assert proxy_for(url, proxies) is None


@pytest.mark.parametrize(
    "url",
    [
        "https://slack.com/api/",
        "https://files.internal/upload",  # the host:port listed is another port
        "https://notcorp.example/",  # a domain covers its subdomains, not names that end the same way
        "http://[::1]:8080/",
    ],
)
def test_any_other_host_goes_through_the_proxy(url: str):
    proxies = {"https": PROXY, "no": "127.0.0.1,localhost,.corp.example,files.internal:8443"}
    assert proxy_for(url, proxies) == PROXY


def test_a_lone_star_in_no_proxy_sends_everything_straight():
    assert proxy_for("https://slack.com/api/", {"https": PROXY, "no": "*"}) is None


def test_the_https_proxy_comes_first_and_the_http_proxy_serves_when_alone_whatever_the_scheme():
    both = {"https": PROXY, "http": "http://other:8080"}
    assert proxy_for("http://slack.test/api/", both) == PROXY
    assert proxy_for("https://slack.com/api/", {"http": "http://other:8080"}) == "http://other:8080"


def test_without_a_proxy_there_is_none_to_use():
    assert proxy_for("https://slack.com/api/", {}) is None
    assert proxy_for("https://slack.com/api/", {"no": "localhost"}) is None


@pytest.mark.parametrize("spelling", [str.upper, str.lower])
def test_the_variables_are_read_in_either_case(monkeypatch: pytest.MonkeyPatch, spelling):
    for name in ("https_proxy", "http_proxy", "no_proxy", "HTTPS_PROXY", "HTTP_PROXY", "NO_PROXY"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv(spelling("https_proxy"), PROXY)
    monkeypatch.setenv(spelling("no_proxy"), "127.0.0.1,localhost")
    assert proxy_for("http://127.0.0.1:5000/api/", getproxies_environment()) is None
    assert proxy_for("https://slack.com/api/", getproxies_environment()) == PROXY
