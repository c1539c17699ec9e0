// An independent, OpenID Certified provider (panva/oidc-provider) for the SDK's auth tests.
//
// Started by tests/oidc/conftest.py:
//
//     node server.mjs            (environment: OIDC_TEST_PORT, OIDC_TEST_CONFIG)
//
// OIDC_TEST_PORT is the loopback port to bind; OIDC_TEST_CONFIG is a JSON object:
//
//     {
//       "users": {"alice": "her password"},
//       "scopes": ["openid", "offline_access", "api:read"],
//       "clients": [<oidc-provider client metadata>, ...],
//       "profiles": {"<client_id>": {"accessTokenTTL": 6, "deviceCodeTTL": 2,
//                                    "clientCredentialsTTL": 6, "refreshTokenTTL": 3600,
//                                    "deviceInterval": 1, "slowDownPolls": 1}},
//       "signingKeys": [<private JWK>, ...],          (optional; default: one new RS256 key)
//       "resource": {"indicator": "https://api.example", "scope": "api:read"},   (optional)
//       "claims": {"alice": {"groups": ["lab"], "email": "..."}},                 (optional)
//       "opaque": {"clients": ["cli-opaque"]},                                     (optional)
//       "deviceFlow": false                        (optional; default true: see the idp-client block)
//     }
//
// With "resource", every access token is a JWT for that resource (audience = the indicator,
// signed with the first signing key) carrying the user's "claims": an institution's provider
// as an API (our reference server) trusts it. The clients in "opaque" get opaque access tokens
// for that resource instead, which an API checks at the introspection endpoint (RFC 7662). "signingKeys" lets a test know the keys (to
// forge tokens) and restart the provider with other keys (key rotation).
//
// All OAuth and OpenID behaviour (device flow, client credentials, refresh-token rotation and
// reuse detection, revocation, discovery) is oidc-provider's own. This program adds only what a
// deployment adds around it, plus what a test needs to observe:
//
// * the sign-in pages (login and consent) that finish oidc-provider's interactions, for the
//   users in the configuration: a test drives them over HTTP like a browser would;
// * device-flow polling pacing (RFC 8628 §3.5): the device authorization response carries the
//   client's `interval`; a poll sooner than the interval is answered `slow_down` and the
//   interval grows by 5 s; `slowDownPolls` answers the first N polls of a code with `slow_down`
//   (an overloaded provider), so that a client's back-off can be tested;
// * a protected resource, GET /test/resource, that accepts a valid bearer access token
//   (401 otherwise), like an API behind this provider;
// * a record of the calls to the token, device, revocation and resource endpoints:
//   GET /test/events returns it, POST /test/reset clears it.
//
// It prints "READY <issuer>" on stdout once it listens, and exits when stdin closes (so a
// test run that dies does not leave it behind).

import crypto from 'node:crypto';
import http from 'node:http';
import process from 'node:process';

import Provider from 'oidc-provider';

const port = Number(process.env.OIDC_TEST_PORT);
if (!Number.isInteger(port) || port <= 0) {
  throw new Error('OIDC_TEST_PORT must be the port to listen on');
}
const config = JSON.parse(process.env.OIDC_TEST_CONFIG || '{}');
const users = config.users || {};
const profiles = config.profiles || {};
const host = '127.0.0.1';
const issuer = `http://${host}:${port}`;

const DEVICE_GRANT = 'urn:ietf:params:oauth:grant-type:device_code';
const PACING_TOLERANCE_MS = 20; // timer granularity; a client that sleeps the interval passes

function profileOf(client) {
  return (client && profiles[client.clientId]) || {};
}

function ttl(name, fallback) {
  return (ctx, token, client) => profileOf(client)[name] ?? fallback;
}

const events = [];

function record(event) {
  events.push({ at: Date.now() / 1000, ...event });
}

// -- the provider ---------------------------------------------------------------------------

function defaultSigningKeys() {
  const { privateKey } = crypto.generateKeyPairSync('rsa', { modulusLength: 2048 });
  return [{ ...privateKey.export({ format: 'jwk' }), kid: 'test-rs256', use: 'sig', alg: 'RS256' }];
}
// -- idp-client: a provider that offers only the browser sign-in ----------------------------
// "deviceFlow": false in OIDC_TEST_CONFIG turns the device flow off: discovery then has no
// device_authorization_endpoint, and the CLI's `login --flow auto` must pick the browser
// sign-in (authorization code + PKCE; a native client with the loopback redirect
// http://127.0.0.1/callback, whose port oidc-provider ignores, RFC 8252 §7.3).
const deviceFlowEnabled = config.deviceFlow !== false;
// -- end of the idp-client block ------------------------------------------------------------

const signingKeys = config.signingKeys || defaultSigningKeys();
const accountClaims = config.claims || {};

// -- opaque access tokens and introspection (issue 18: the server's RFC 7662 support) ---------
//
// "opaque": {"clients": [...]}: the access tokens these clients get for the resource are
// opaque strings (not JWTs), with the same audience, scope, claims and lifetime as the JWT
// ones. An API learns what they are at /token/introspection, as a confidential client (any
// client with a secret may ask about any token; a public client only about its own).

const opaqueClients = new Set(config.opaque?.clients || []);

function accessTokenFormat(client) {
  return client && opaqueClients.has(client.clientId) ? 'opaque' : 'jwt';
}

async function introspectionAllowed(ctx, client, token) {
  return client.clientAuthMethod !== 'none' || token.clientId === client.clientId;
}

// -- end of the opaque-token block -------------------------------------------------------------

function resourceIndicators() {
  const resource = config.resource;
  if (!resource) return { enabled: false };
  return {
    enabled: true,
    defaultResource: () => resource.indicator,
    useGrantedResource: () => true,
    getResourceServerInfo(ctx, indicator, client) {
      if (indicator !== resource.indicator) throw new Error('unknown resource');
      return {
        scope: resource.scope || '',
        audience: resource.indicator,
        accessTokenFormat: accessTokenFormat(client),
        accessTokenTTL: 600,
        jwt: { sign: { alg: signingKeys[0].alg || 'RS256' } },
      };
    },
  };
}

function page(title, body) {
  return `<!DOCTYPE html><html><head><meta charset="utf-8"><title>${title}</title></head>`
    + `<body><h1>${title}</h1>${body}</body></html>`;
}

const provider = new Provider(issuer, {
  clients: config.clients || [],
  scopes: config.scopes || ['openid', 'offline_access'],
  jwks: { keys: signingKeys },
  extraTokenClaims(ctx, token) {
    return (token.accountId && accountClaims[token.accountId]) || undefined;
  },
  cookies: { keys: [crypto.randomBytes(32).toString('base64url')] },
  async findAccount(ctx, sub) {
    if (!Object.hasOwn(users, sub)) return undefined;
    return { accountId: sub, async claims() { return { sub }; } };
  },
  interactions: { url: (ctx, interaction) => `/interaction/${interaction.uid}` },
  features: {
    devInteractions: { enabled: false },
    clientCredentials: { enabled: true },
    introspection: { enabled: true, allowedPolicy: introspectionAllowed },
    revocation: { enabled: true },
    resourceIndicators: resourceIndicators(),
    deviceFlow: {
      enabled: deviceFlowEnabled, // see the idp-client block above
      async userCodeInputSource(ctx, form) {
        ctx.body = page('Enter the code', form);
      },
      async userCodeConfirmSource(ctx, form, client, deviceInfo, userCode) {
        ctx.body = page('Confirm the device', `<p id="user-code">${userCode}</p>${form}`
          + '<button type="submit" form="op.deviceConfirmForm">Continue</button>'
          + '<button type="submit" form="op.deviceConfirmForm" value="yes" name="abort">Abort</button>');
      },
      async successSource(ctx) {
        ctx.body = page('Signed in', '<p id="device-success">You can return to your device.</p>');
      },
    },
  },
  ttl: {
    AccessToken: ttl('accessTokenTTL', 600),
    ClientCredentials: ttl('clientCredentialsTTL', 600),
    DeviceCode: ttl('deviceCodeTTL', 60),
    RefreshToken: ttl('refreshTokenTTL', 3600),
    IdToken: 600,
    Interaction: 600,
    Session: 3600,
    Grant: 3600,
  },
  async renderError(ctx, out) {
    ctx.type = 'html';
    ctx.body = page('Error', `<p id="error">${out.error}</p>`);
  },
});

// -- device-flow pacing and the record of token-endpoint calls -------------------------------

const pacing = new Map(); // device_code -> { clientId, interval (s), last (ms), slowDownLeft }

async function readBody(req) {
  const chunks = [];
  for await (const chunk of req) chunks.push(chunk);
  return Buffer.concat(chunks).toString('utf8');
}

function basicClientId(ctx) {
  const header = ctx.get('authorization');
  if (!header.toLowerCase().startsWith('basic ')) return undefined;
  const decoded = Buffer.from(header.slice(6), 'base64').toString('utf8');
  return decodeURIComponent(decoded.split(':')[0].replace(/\+/g, ' '));
}

provider.use(async (ctx, next) => {
  const endpoints = { '/token': 'token', '/device/auth': 'device_authorization', '/token/revocation': 'revocation' };
  const endpoint = ctx.method === 'POST' ? endpoints[ctx.path] : undefined;
  if (endpoint === undefined) {
    await next();
    return;
  }
  // Read the form here (oidc-provider then uses it as an already parsed body).
  const raw = await readBody(ctx.req);
  ctx.req.body = raw;
  const form = new URLSearchParams(raw);
  const grantType = form.get('grant_type') || undefined;
  const clientId = form.get('client_id') || basicClientId(ctx);

  if (endpoint === 'token' && grantType === DEVICE_GRANT) {
    const state = pacing.get(form.get('device_code'));
    if (state) {
      const now = Date.now();
      let slowDown = false;
      if (state.slowDownLeft > 0) {
        state.slowDownLeft -= 1;
        slowDown = true;
      } else if (now - state.last < state.interval * 1000 - PACING_TOLERANCE_MS) {
        slowDown = true;
      }
      state.last = now;
      if (slowDown) {
        state.interval += 5;
        ctx.status = 400;
        ctx.set('Cache-Control', 'no-store');
        ctx.body = { error: 'slow_down', error_description: `poll at most every ${state.interval} s` };
        record({ endpoint, grant_type: grantType, client_id: state.clientId, status: 400, error: 'slow_down' });
        return;
      }
    }
  }

  await next();

  const body = ctx.body && typeof ctx.body === 'object' && !Buffer.isBuffer(ctx.body) ? ctx.body : {};
  if (endpoint === 'device_authorization' && ctx.status === 200 && body.device_code) {
    const interval = profileOf(ctx.oidc.client).deviceInterval ?? 5;
    body.interval = interval;
    pacing.set(body.device_code, {
      clientId: ctx.oidc.client.clientId,
      interval,
      last: Date.now(),
      slowDownLeft: profileOf(ctx.oidc.client).slowDownPolls ?? 0,
    });
  }
  record({
    endpoint,
    grant_type: grantType,
    client_id: ctx.oidc?.client?.clientId ?? clientId,
    status: ctx.status,
    error: body.error,
    rotated: endpoint === 'token' && grantType === 'refresh_token' && ctx.status === 200
      ? body.refresh_token !== form.get('refresh_token') : undefined,
  });
});

// -- sign-in pages: finish oidc-provider's interactions -------------------------------------

async function interactionPage(req, res, uid) {
  const details = await provider.interactionDetails(req, res);
  if (details.uid !== uid) throw new Error('interaction mismatch');
  const { prompt } = details;
  if (prompt.name === 'login') {
    return page('Sign in', `<form id="login" method="post" action="/interaction/${uid}/login">`
      + '<input name="login"><input name="password" type="password"><button>Sign in</button></form>'
      + `<form id="abort" method="post" action="/interaction/${uid}/abort"><button>Cancel</button></form>`);
  }
  return page('Allow access', `<form id="consent" method="post" action="/interaction/${uid}/confirm">`
    + `<p>${details.params.client_id} asks for ${details.params.scope}</p><button>Allow</button></form>`
    + `<form id="abort" method="post" action="/interaction/${uid}/abort"><button>Deny</button></form>`);
}

async function finishInteraction(req, res, uid, action, form) {
  const details = await provider.interactionDetails(req, res);
  if (details.uid !== uid) throw new Error('interaction mismatch');
  let result;
  if (action === 'abort') {
    result = { error: 'access_denied', error_description: 'End-User aborted interaction' };
  } else if (action === 'login' && details.prompt.name === 'login') {
    const login = form.get('login');
    if (!Object.hasOwn(users, login) || users[login] !== form.get('password')) {
      return { status: 401, html: page('Sign in failed', '<p id="error">wrong user name or password</p>') };
    }
    result = { login: { accountId: login } };
  } else if (action === 'confirm' && details.prompt.name === 'consent') {
    const { prompt, params, session } = details;
    const grant = details.grantId
      ? await provider.Grant.find(details.grantId)
      : new provider.Grant({ accountId: session.accountId, clientId: params.client_id });
    if (prompt.details.missingOIDCScope) grant.addOIDCScope(prompt.details.missingOIDCScope.join(' '));
    if (prompt.details.missingOIDCClaims) grant.addOIDCClaims(prompt.details.missingOIDCClaims);
    for (const [indicator, scopes] of Object.entries(prompt.details.missingResourceScopes || {})) {
      grant.addResourceScope(indicator, scopes.join(' '));
    }
    const grantId = await grant.save();
    result = { consent: details.grantId ? {} : { grantId } };
  } else {
    return { status: 400, html: page('Error', '<p id="error">unexpected step</p>') };
  }
  const location = await provider.interactionResult(req, res, result, { mergeWithLastSubmission: true });
  return { status: 303, location };
}

// -- the protected resource -----------------------------------------------------------------

async function validAccessToken(value) {
  const token = (await provider.AccessToken.find(value)) ?? (await provider.ClientCredentials.find(value));
  if (!token || token.isExpired) return undefined;
  if (token.grantId && !(await provider.Grant.find(token.grantId))) return undefined;
  return token;
}

async function resource(req) {
  const header = req.headers.authorization || '';
  const match = /^Bearer ([^\s]+)$/i.exec(header);
  const token = match ? await validAccessToken(match[1]) : undefined;
  if (!token) {
    record({ endpoint: 'resource', status: 401 });
    return {
      status: 401,
      headers: { 'WWW-Authenticate': 'Bearer error="invalid_token"' },
      json: { error: 'invalid_token' },
    };
  }
  const tokenId = crypto.createHash('sha256').update(token.jti).digest('hex').slice(0, 12);
  record({ endpoint: 'resource', status: 200, client_id: token.clientId, token_id: tokenId });
  return {
    status: 200,
    json: { sub: token.accountId ?? null, client_id: token.clientId, scope: token.scope ?? null },
  };
}

// -- the HTTP server ------------------------------------------------------------------------

function send(res, { status, json, html, location, headers = {} }) {
  res.statusCode = status;
  for (const [name, value] of Object.entries(headers)) res.setHeader(name, value);
  res.setHeader('Cache-Control', 'no-store');
  if (location) {
    res.setHeader('Location', location);
    res.end();
  } else if (json !== undefined) {
    res.setHeader('Content-Type', 'application/json');
    res.end(JSON.stringify(json));
  } else {
    res.setHeader('Content-Type', 'text/html; charset=utf-8');
    res.end(html ?? '');
  }
}

async function testRoutes(req, res, url) {
  const interaction = /^\/interaction\/([\w-]+)(?:\/(login|confirm|abort))?$/.exec(url.pathname);
  if (interaction) {
    const [, uid, action] = interaction;
    if (!action && req.method === 'GET') {
      send(res, { status: 200, html: await interactionPage(req, res, uid) });
      return true;
    }
    if (action && req.method === 'POST') {
      const form = new URLSearchParams(await readBody(req));
      send(res, await finishInteraction(req, res, uid, action, form));
      return true;
    }
    return false;
  }
  if (url.pathname === '/test/resource' && req.method === 'GET') {
    send(res, await resource(req));
    return true;
  }
  if (url.pathname === '/test/events' && req.method === 'GET') {
    send(res, { status: 200, json: events });
    return true;
  }
  if (url.pathname === '/test/reset' && req.method === 'POST') {
    events.length = 0;
    send(res, { status: 204 });
    return true;
  }
  return false;
}

const providerCallback = provider.callback();

const server = http.createServer((req, res) => {
  const url = new URL(req.url, issuer);
  testRoutes(req, res, url)
    .then((handled) => {
      if (!handled) providerCallback(req, res);
    })
    .catch((err) => {
      process.stderr.write(`${err.stack || err}\n`);
      if (!res.headersSent) send(res, { status: 500, json: { error: 'server_error', error_description: String(err.message || err) } });
    });
});

server.listen(port, host, () => {
  process.stdout.write(`READY ${issuer}\n`);
});

process.stdin.on('end', () => process.exit(0));
process.stdin.resume();
process.on('SIGTERM', () => process.exit(0));
