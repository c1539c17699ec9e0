"""L1 authentication: OAuth 2.0 / OIDC token sources, a token store and ``AuthManager``.

Works against any standard OIDC provider (the reference server, Keycloak, ...):

```python
auth = AuthManager.from_config(config)          # static token, client secret or stored login
await auth.login_device(show_code)              # once, interactively (or login_browser)
async with httpx.AsyncClient(auth=auth) as http:
    auth.bind(http)
    ...
```

Errors (from :mod:`provena_like._core.errors`): ``LoginRequired``, ``TokenRefreshFailed``,
``RefreshTokenInvalid``, ``InvalidClient``, ``DeviceCodeExpired``, ``AccessDenied``,
``AuthorizationFlowError``, ``AuthorizationTimeout`` (all ``AuthError``, which carries the
provider's ``.error``, ``.error_description``, ``.error_uri``).
"""

from provena_like.auth.bearer import BearerAuth, TokenProvider
from provena_like.auth.flows import (
    ClientCredentials,
    DeviceCodeFlow,
    DevicePrompt,
    PromptCallback,
    RefreshTokenFlow,
    StaticToken,
    TokenSource,
)
from provena_like.auth.loopback import (
    AuthorizationCodeFlow,
    BrowserCallback,
    BrowserPrompt,
    pkce_pair,
)
from provena_like.auth.manager import AuthManager, with_remembered_sign_in
from provena_like.auth.oidc import OIDCDiscovery, fetch_oidc_configuration
from provena_like.auth.store import SignIn, TokenKey, TokenStore
from provena_like.auth.token_set import TokenSet

__all__ = [
    "AuthManager",
    "AuthorizationCodeFlow",
    "BearerAuth",
    "BrowserCallback",
    "BrowserPrompt",
    "ClientCredentials",
    "DeviceCodeFlow",
    "DevicePrompt",
    "OIDCDiscovery",
    "PromptCallback",
    "RefreshTokenFlow",
    "SignIn",
    "StaticToken",
    "TokenKey",
    "TokenProvider",
    "TokenSet",
    "TokenSource",
    "TokenStore",
    "fetch_oidc_configuration",
    "pkce_pair",
    "with_remembered_sign_in",
]
