"""Prints an access token from the OIDC provider (client credentials).

usage: token.py ISSUER CLIENT_ID SECRET RESOURCE
"""
import os
import sys

sys.path.insert(0, os.path.dirname(__file__))
import api  # noqa: E402

print(api.client_credentials_token(*sys.argv[1:5]))
