// A real OpenID provider (node oidc-provider) for crmgate's end-to-end tests:
// password login, TOTP as a second factor, amr/acr in ID tokens, acr_values
// and max_age honoured, PKCE required, refresh-token rotation, RP-initiated
// and back-channel logout. TEST ONLY: users and secrets come from a file.
//
// Options (flag, or env var):
//   --port PORT (9400)              --issuer URL (ISSUER, http://127.0.0.1:PORT)
//   --client-id ID (CLIENT_ID, crmgate)   --client-secret S (CLIENT_SECRET, crmgate-test-secret)
//   --redirect-uri URI, repeatable (REDIRECT_URIS, comma separated)
//   --post-logout-redirect-uri URI, repeatable (POST_LOGOUT_REDIRECT_URIS)
//   --backchannel-logout-uri URI (BACKCHANNEL_LOGOUT_URI)
//   --users FILE (USERS_FILE, users.json next to this script)
import crypto from 'node:crypto';
import fs from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import Provider, { interactionPolicy } from 'oidc-provider';
import { verify as verifyTOTP } from 'otplib';

export const ACR_PWD = 'urn:crmgate:acr:pwd';
export const ACR_MFA = 'urn:crmgate:acr:mfa';

const env = process.env;
const list = (v) => (v ? v.split(',').map((s) => s.trim()).filter(Boolean) : []);
const { values: args } = parseArgs({
  options: {
    port: { type: 'string', default: env.PORT ?? '9400' },
    issuer: { type: 'string', default: env.ISSUER },
    'client-id': { type: 'string', default: env.CLIENT_ID ?? 'crmgate' },
    'client-secret': { type: 'string', default: env.CLIENT_SECRET ?? 'crmgate-test-secret' },
    'redirect-uri': { type: 'string', multiple: true, default: list(env.REDIRECT_URIS) },
    'post-logout-redirect-uri': { type: 'string', multiple: true, default: list(env.POST_LOGOUT_REDIRECT_URIS) },
    'backchannel-logout-uri': { type: 'string', default: env.BACKCHANNEL_LOGOUT_URI },
    users: {
      type: 'string',
      default: env.USERS_FILE ?? path.join(path.dirname(fileURLToPath(import.meta.url)), 'users.json'),
    },
  },
});
const port = Number(args.port);
const issuer = args.issuer ?? `http://127.0.0.1:${port}`;
if (args['redirect-uri'].length === 0) {
  console.error('test idp: at least one --redirect-uri (or REDIRECT_URIS) is required');
  process.exit(2);
}

// Users, by username (= sub in the seed file).
const users = new Map();
for (const u of JSON.parse(fs.readFileSync(args.users, 'utf8')).users) {
  if (!u.username || !u.password) throw new Error(`users file ${args.users}: a user lacks username or password`);
  users.set(u.username, { ...u, sub: u.sub ?? u.username });
}
const bySub = new Map([...users.values()].map((u) => [u.sub, u]));

// Constant-time comparison of hashes, so response time does not leak how much
// of a password matched.
const digest = (s) => crypto.createHash('sha256').update(String(s)).digest();
const passwordOK = (u, pw) => Boolean(u) && crypto.timingSafeEqual(digest(u.password), digest(pw));

// MFA is wanted when the client asks for the MFA acr, either voluntarily
// (acr_values) or through the claims parameter.
function wantsMFA(params) {
  if ((params.acr_values ?? '').split(' ').includes(ACR_MFA)) return true;
  try {
    const acr = JSON.parse(params.claims ?? '{}')?.id_token?.acr;
    return acr?.value === ACR_MFA || (acr?.values ?? []).includes(ACR_MFA);
  } catch {
    return false;
  }
}

// An extra login check: a session that authenticated with the password only
// is sent back to the login prompt (where only the TOTP is asked) when the
// client wants MFA and the user has a second factor.
const policy = interactionPolicy.base();
policy.get('login').checks.push(new interactionPolicy.Check(
  'crmgate_mfa', 'multi-factor authentication was requested', (ctx) => {
    const { oidc } = ctx;
    if (!wantsMFA(oidc.params) || oidc.session.acr === ACR_MFA) return interactionPolicy.Check.NO_NEED_TO_PROMPT;
    return bySub.get(oidc.session.accountId)?.totp_secret
      ? interactionPolicy.Check.REQUEST_PROMPT : interactionPolicy.Check.NO_NEED_TO_PROMPT;
  },
));

const signingKey = {
  ...crypto.generateKeyPairSync('rsa', { modulusLength: 2048 }).privateKey.export({ format: 'jwk' }),
  kid: crypto.randomUUID(), alg: 'RS256', use: 'sig',
};

const client = {
  client_id: args['client-id'],
  client_secret: args['client-secret'],
  redirect_uris: args['redirect-uri'],
  post_logout_redirect_uris: args['post-logout-redirect-uri'],
  grant_types: ['authorization_code', 'refresh_token'],
  response_types: ['code'],
  token_endpoint_auth_method: 'client_secret_basic',
  ...(args['backchannel-logout-uri']
    ? { backchannel_logout_uri: args['backchannel-logout-uri'], backchannel_logout_session_required: true } : {}),
};

const provider = new Provider(issuer, {
  clients: [client],
  jwks: { keys: [signingKey] },
  cookies: { keys: [crypto.randomBytes(32).toString('base64url')] },
  pkce: { required: () => true },
  acrValues: [ACR_PWD, ACR_MFA],
  scopes: ['openid', 'offline_access', 'profile', 'email', 'groups', 'crm'],
  claims: {
    sid: null, iss: null,
    // How the user authenticated goes in every ID token, asked for or not:
    // crmgate's MFA decisions and step-up read amr, acr and auth_time.
    openid: ['sub', 'acr', 'amr', 'auth_time'],
    email: ['email', 'email_verified'],
    profile: ['name', 'roles', 'groups', 'teams', 'crm_user_id', 'account_id'],
    groups: ['roles', 'groups', 'teams'],
    crm: ['crm_user_id', 'account_id'],
  },
  // Put the granted claims in the ID token: crmgate reads them from there.
  conformIdTokenClaims: false,
  // oidc-provider refuses to call special-use addresses (SSRF protection);
  // here the relying parties (back-channel logout) are on loopback by design,
  // so loopback alone is let through.
  fetch: (url, { dispatcher, ...options }) => globalThis.fetch(url,
    ['127.0.0.1', 'localhost', '[::1]'].includes(new URL(url).hostname) ? options : { ...options, dispatcher }),
  rotateRefreshToken: true,
  // Refresh tokens for every code grant, as Keycloak and most IdPs do:
  // oidc-provider's default wants offline_access, which the spec only honours
  // with prompt=consent. Without offline_access a refresh token dies with the
  // IdP session (logout ends it).
  issueRefreshToken: async (ctx, client) => client.grantTypeAllowed('refresh_token'),
  interactions: { policy, url: (ctx, interaction) => `/interaction/${interaction.uid}` },
  features: {
    devInteractions: { enabled: false },
    backchannelLogout: { enabled: true },
    claimsParameter: { enabled: true },
    revocation: { enabled: true },
    rpInitiatedLogout: {
      enabled: true,
      logoutSource: (ctx, form) => {
        ctx.body = page('Sign out', `${form}<p>Sign out of the test IdP?</p>
<button id="logout-yes" type="submit" form="op.logoutForm" name="logout" value="yes">Yes, sign me out</button>
<button id="logout-no" type="submit" form="op.logoutForm">No</button>`);
      },
      postLogoutSuccessSource: (ctx) => { ctx.body = page('Signed out', '<p id="signed-out">You are signed out.</p>'); },
    },
  },
  ttl: {
    AccessToken: 600, AuthorizationCode: 60, IdToken: 600, Interaction: 600,
    RefreshToken: 86400, Session: 86400, Grant: 86400,
  },
  async findAccount(ctx, sub) {
    const u = bySub.get(sub);
    if (!u) return undefined;
    return {
      accountId: sub,
      claims: async () => ({
        sub, name: u.name, email: u.email, email_verified: true,
        roles: u.roles ?? [], groups: u.groups ?? [], teams: u.teams ?? [],
        ...(u.crm_user_id ? { crm_user_id: u.crm_user_id } : {}),
        ...(u.account_id ? { account_id: u.account_id } : {}),
      }),
    };
  },
  renderError: (ctx, out) => {
    ctx.type = 'html';
    ctx.body = page('Error', `<p id="error">${esc(out.error)}: ${esc(out.error_description ?? '')}</p>`);
  },
});

const esc = (s) => String(s).replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
function page(title, body) {
  return `<!doctype html><html><head><meta charset="utf-8"><title>${esc(title)}</title></head>
<body><h1>${esc(title)}</h1>${body}</body></html>`;
}
const loginForm = (uid, error = '', username = '') => page('Sign in', `${error ? `<p id="error">${esc(error)}</p>` : ''}
<form id="login" method="post" action="/interaction/${uid}/login">
<label>Username <input id="username" name="username" value="${esc(username)}" autocomplete="username" required></label>
<label>Password <input id="password" name="password" type="password" autocomplete="current-password" required></label>
<button id="submit" type="submit">Sign in</button></form>
<a id="abort" href="/interaction/${uid}/abort">Cancel</a>`);
const otpForm = (uid, error = '') => page('Two-step verification', `${error ? `<p id="error">${esc(error)}</p>` : ''}
<form id="otp" method="post" action="/interaction/${uid}/otp">
<label>Code from your authenticator app <input id="code" name="code" inputmode="numeric" autocomplete="one-time-code" required></label>
<button id="submit" type="submit">Verify</button></form>
<a id="abort" href="/interaction/${uid}/abort">Cancel</a>`);

// Password-checked logins waiting for their TOTP, by interaction uid. The
// interaction cookie binds the uid to the browser; entries die with it.
const pendingOTP = new Map();
const MAX_OTP_TRIES = 5;
function awaitOTP(uid, accountId) {
  const now = Date.now();
  for (const [k, v] of pendingOTP) if (now - v.at > 600_000) pendingOTP.delete(k);
  pendingOTP.set(uid, { accountId, tries: 0, at: now });
}
// Last accepted TOTP time step per user, so a code cannot be replayed.
const lastStep = new Map();

async function readForm(req) {
  let body = '';
  for await (const chunk of req) {
    body += chunk;
    if (body.length > 16384) throw new Error('form too large');
  }
  return new URLSearchParams(body);
}

function send(res, status, html) {
  res.writeHead(status, { 'content-type': 'text/html; charset=utf-8', 'cache-control': 'no-store' });
  res.end(html);
}

const login = (accountId, mfa) => ({
  login: mfa
    ? { accountId, acr: ACR_MFA, amr: ['pwd', 'otp', 'mfa'] }
    : { accountId, acr: ACR_PWD, amr: ['pwd'] },
});

async function interaction(req, res, uid, action) {
  const details = await provider.interactionDetails(req, res);
  if (details.uid !== uid) return send(res, 400, page('Error', '<p id="error">interaction mismatch</p>'));
  const { prompt, params, session } = details;

  if (action === 'abort') {
    return provider.interactionFinished(req, res,
      { error: 'access_denied', error_description: 'the user cancelled the login' }, { mergeWithLastSubmission: false });
  }

  if (prompt.name === 'consent') {
    // A first-party test IdP: grant what was asked, without a consent page.
    const grant = details.grantId
      ? await provider.Grant.find(details.grantId)
      : new provider.Grant({ accountId: session.accountId, clientId: params.client_id });
    const d = prompt.details;
    if (d.missingOIDCScope) grant.addOIDCScope(d.missingOIDCScope.join(' '));
    if (d.missingOIDCClaims) grant.addOIDCClaims(d.missingOIDCClaims);
    for (const [indicator, scopes] of Object.entries(d.missingResourceScopes ?? {})) {
      grant.addResourceScope(indicator, scopes.join(' '));
    }
    const grantId = await grant.save();
    return provider.interactionFinished(req, res, { consent: { grantId } }, { mergeWithLastSubmission: true });
  }

  if (action === undefined) {
    // Step-up of a live password session: only the second factor is asked.
    const stepUpOnly = session?.accountId && prompt.reasons.every((r) => r === 'crmgate_mfa');
    if (stepUpOnly) {
      awaitOTP(uid, session.accountId);
      return send(res, 200, otpForm(uid));
    }
    return send(res, 200, loginForm(uid));
  }

  const form = await readForm(req);
  if (action === 'login') {
    const user = users.get(form.get('username') ?? '');
    if (!passwordOK(user, form.get('password') ?? '')) {
      return send(res, 401, loginForm(uid, 'Wrong username or password.', form.get('username') ?? ''));
    }
    if (wantsMFA(params) && user.totp_secret) {
      awaitOTP(uid, user.sub);
      return send(res, 200, otpForm(uid));
    }
    return provider.interactionFinished(req, res, login(user.sub, false), { mergeWithLastSubmission: false });
  }

  if (action === 'otp') {
    const pending = pendingOTP.get(uid);
    if (!pending) return send(res, 400, loginForm(uid, 'Sign in with your password first.'));
    const user = bySub.get(pending.accountId);
    const code = (form.get('code') ?? '').replace(/\s/g, '');
    const result = /^\d{6}$/.test(code)
      ? await verifyTOTP({ secret: user.totp_secret, token: code, epochTolerance: 30 })
      : { valid: false };
    const step = result.valid ? result.timeStep : undefined;
    if (!result.valid || step <= (lastStep.get(user.sub) ?? -1)) {
      if (++pending.tries >= MAX_OTP_TRIES) {
        pendingOTP.delete(uid);
        return provider.interactionFinished(req, res,
          { error: 'access_denied', error_description: 'too many wrong codes' }, { mergeWithLastSubmission: false });
      }
      return send(res, 401, otpForm(uid, 'Wrong or already used code.'));
    }
    lastStep.set(user.sub, step);
    pendingOTP.delete(uid);
    return provider.interactionFinished(req, res, login(user.sub, true), { mergeWithLastSubmission: false });
  }
  return send(res, 404, page('Not found', ''));
}

const oidc = provider.callback();
const server = http.createServer(async (req, res) => {
  const m = /^\/interaction\/([\w-]+)(?:\/(login|otp|abort))?$/.exec(new URL(req.url, issuer).pathname);
  if (!m) return oidc(req, res);
  const [, uid, action] = m;
  const allowed = action === undefined || action === 'abort' ? 'GET' : 'POST';
  if (req.method !== allowed) return send(res, 405, page('Method not allowed', ''));
  try {
    await interaction(req, res, uid, action);
  } catch (err) {
    // Expired or foreign interactions land here; never echo internals.
    console.error(`test idp: interaction ${uid}: ${err.message}`);
    if (!res.headersSent) send(res, 400, page('Error', '<p id="error">This sign-in has expired. Start again.</p>'));
  }
});

provider.on('server_error', (ctx, err) => console.error(`test idp: server error: ${err.stack}`));
provider.on('backchannel.error', (ctx, err, clientId) => console.error(`test idp: back-channel logout to ${clientId}: ${err.message}`));

server.listen(port, '127.0.0.1', () => {
  console.log(`crmgate test idp ready at ${issuer} (client ${client.client_id}, ${users.size} users)`);
});
for (const sig of ['SIGINT', 'SIGTERM']) process.on(sig, () => server.close(() => process.exit(0)));
