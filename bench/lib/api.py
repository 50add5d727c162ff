"""Small HTTP helpers for the Sluice API and the OIDC provider (stdlib only)."""

import base64
import http.client
import json
import urllib.parse


def request(base, method, path, token=None, body=None, conn=None):
    """One request; returns (status, parsed JSON or None). Reuses `conn` when given."""
    u = urllib.parse.urlsplit(base)
    own = conn is None
    if own:
        conn = http.client.HTTPConnection(u.hostname, u.port, timeout=30)
    headers = {}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    data = None
    if body is not None:
        data = json.dumps(body).encode()
        headers["Content-Type"] = "application/json"
    conn.request(method, path, body=data, headers=headers)
    resp = conn.getresponse()
    raw = resp.read()
    if own:
        conn.close()
    try:
        return resp.status, json.loads(raw) if raw else None
    except ValueError:
        return resp.status, raw.decode(errors="replace")


def client_credentials_token(issuer, client_id, secret, resource):
    u = urllib.parse.urlsplit(issuer)
    conn = http.client.HTTPConnection(u.hostname, u.port, timeout=30)
    form = urllib.parse.urlencode(
        {"grant_type": "client_credentials", "resource": resource}
    )
    auth = base64.b64encode(f"{client_id}:{secret}".encode()).decode()
    conn.request(
        "POST",
        "/token",
        body=form,
        headers={"Authorization": f"Basic {auth}", "Content-Type": "application/x-www-form-urlencoded"},
    )
    resp = conn.getresponse()
    body = json.loads(resp.read())
    if resp.status != 200:
        raise RuntimeError(f"token request refused ({resp.status}): {body}")
    return body["access_token"]
