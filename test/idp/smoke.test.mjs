// Proves the test IdP does what crmgate's end-to-end tests rely on, with
// plain fetch and no browser: code + PKCE login with password and TOTP,
// amr/acr in the ID token, step-up via acr_values, refresh rotation and
// RP-initiated logout that delivers a back-channel logout token.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import crypto from 'node:crypto';
import http from 'node:http';
import { once } from 'node:events';
import fs from 'node:fs';
import { generate } from 'otplib';

const ACR_PWD = 'urn:crmgate:acr:pwd';
const ACR_MFA = 'urn:crmgate:acr:mfa';
const users = Object.fromEntries(JSON.parse(fs.readFileSync(new URL('./users.json', import.meta.url))).users
  .map((u) => [u.username, u]));
const CLIENT = { id: 'crmgate', secret: 'smoke-secret' };

let idp; let issuer; let rp; let rpOrigin;
const logoutTokens = [];

const listen = async (server) => { server.listen(0, '127.0.0.1'); await once(server, 'listening'); return server.address().port; };
const b64url = (buf) => Buffer.from(buf).toString('base64url');
const claimsOf = (jwt) => JSON.parse(Buffer.from(jwt.split('.')[1], 'base64url').toString());

before(async () => {
  // The relying party's side: only the back-channel logout endpoint answers.
  rp = http.createServer(async (req, res) => {
    let body = '';
    for await (const c of req) body += c;
    if (req.url === '/bcl' && req.method === 'POST') logoutTokens.push(new URLSearchParams(body).get('logout_token'));
    res.writeHead(200).end();
  });
  rpOrigin = `http://127.0.0.1:${await listen(rp)}`;
  // A free port for the IdP: take one, release it, hand it over.
  const probe = http.createServer();
  const port = await listen(probe);
  probe.close();
  issuer = `http://127.0.0.1:${port}`;
  idp = spawn(process.execPath, [new URL('./server.mjs', import.meta.url).pathname, '--port', String(port),
    '--client-id', CLIENT.id, '--client-secret', CLIENT.secret, '--redirect-uri', `${rpOrigin}/cb`,
    '--post-logout-redirect-uri', `${rpOrigin}/bye`, '--backchannel-logout-uri', `${rpOrigin}/bcl`],
  { stdio: ['ignore', 'pipe', 'inherit'] });
  let out = '';
  await new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`idp not ready after 15s: ${out}`)), 15000);
    idp.stdout.on('data', (d) => { out += d; if (out.includes('ready at')) { clearTimeout(timer); resolve(); } });
    idp.on('exit', (code) => reject(new Error(`idp exited with ${code}: ${out}`)));
  });
});

after(() => { idp?.kill(); rp?.close(); });

// A cookie jar and redirect follower: just enough browser for HTML forms.
class Browser {
  jar = new Map();

  async go(url, init = {}) {
    for (let hops = 0; hops < 20; hops++) {
      const res = await fetch(url, {
        ...init, redirect: 'manual',
        headers: { ...init.headers, cookie: [...this.jar].map(([k, v]) => `${k}=${v}`).join('; ') },
      });
      for (const c of res.headers.getSetCookie()) {
        const [pair, ...attrs] = c.split(';');
        const [name, value] = [pair.slice(0, pair.indexOf('=')).trim(), pair.slice(pair.indexOf('=') + 1)];
        const expired = attrs.some((a) => /expires=.*1970/i.test(a) || /max-age=0\b/i.test(a.trim()));
        if (expired || value === '') this.jar.delete(name); else this.jar.set(name, value);
      }
      const loc = res.headers.get('location');
      if (res.status < 300 || res.status > 399 || !loc) return { url, status: res.status, html: await res.text() };
      const next = new URL(loc, url);
      if (next.origin === rpOrigin) return { callback: next };
      url = next;
      init = {};
    }
    throw new Error('too many redirects');
  }

  submit(page, fields) {
    const form = /<form[^>]*>[\s\S]*?<\/form>/.exec(page.html)?.[0];
    assert.ok(form, `no form on page: ${page.html}`);
    const action = /action="([^"]+)"/.exec(form)[1].replace(/&amp;/g, '&');
    const body = new URLSearchParams();
    for (const m of form.matchAll(/<input[^>]*type="hidden"[^>]*name="([^"]+)"[^>]*value="([^"]*)"/g)) body.set(m[1], m[2]);
    for (const [k, v] of Object.entries(fields)) body.set(k, v);
    return this.go(new URL(action, page.url), {
      method: 'POST', body, headers: { 'content-type': 'application/x-www-form-urlencoded' },
    });
  }

  async authorize(params = {}) {
    const flow = { verifier: b64url(crypto.randomBytes(32)), state: b64url(crypto.randomBytes(12)), nonce: b64url(crypto.randomBytes(12)) };
    const url = new URL('/auth', issuer);
    for (const [k, v] of Object.entries({
      client_id: CLIENT.id, redirect_uri: `${rpOrigin}/cb`, response_type: 'code',
      scope: 'openid profile email groups crm offline_access', state: flow.state, nonce: flow.nonce,
      code_challenge: b64url(crypto.createHash('sha256').update(flow.verifier).digest()),
      code_challenge_method: 'S256', ...params,
    })) if (v !== undefined) url.searchParams.set(k, v);
    return { flow, page: await this.go(url) };
  }
}

async function token(body) {
  const res = await fetch(new URL('/token', issuer), {
    method: 'POST',
    headers: { authorization: `Basic ${Buffer.from(`${CLIENT.id}:${CLIENT.secret}`).toString('base64')}`,
      'content-type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams(body),
  });
  return { status: res.status, json: await res.json() };
}

async function exchange(flow, callback) {
  assert.equal(callback.searchParams.get('state'), flow.state);
  assert.equal(callback.searchParams.get('error'), null, callback.searchParams.get('error_description'));
  const { status, json } = await token({ grant_type: 'authorization_code', code: callback.searchParams.get('code'),
    redirect_uri: `${rpOrigin}/cb`, code_verifier: flow.verifier });
  assert.equal(status, 200, JSON.stringify(json));
  const id = claimsOf(json.id_token);
  assert.equal(id.nonce, flow.nonce);
  assert.equal(id.iss, issuer);
  return { ...json, id };
}

const otp = (user, epoch) => generate({ secret: users[user].totp_secret, ...(epoch ? { epoch } : {}) });

test('discovery advertises what crmgate uses', async () => {
  const d = await (await fetch(new URL('/.well-known/openid-configuration', issuer))).json();
  assert.equal(d.issuer, issuer);
  assert.deepEqual(d.code_challenge_methods_supported, ['S256']);
  assert.deepEqual(d.acr_values_supported, [ACR_PWD, ACR_MFA]);
  assert.equal(d.backchannel_logout_supported, true);
  assert.ok(d.end_session_endpoint && d.jwks_uri);
});

test('PKCE is required', async () => {
  const { page } = await new Browser().authorize({ code_challenge: undefined, code_challenge_method: undefined });
  assert.equal(page.callback?.searchParams.get('error'), 'invalid_request');
});

test('password + TOTP login when MFA is requested; refresh tokens rotate', async () => {
  const b = new Browser();
  const { flow, page } = await b.authorize({ acr_values: ACR_MFA });
  assert.match(page.html, /id="login"/);
  const bad = await b.submit(page, { username: 'sam', password: 'wrong' });
  assert.equal(bad.status, 401);
  const totp = await b.submit(bad, { username: 'sam', password: users.sam.password });
  assert.match(totp.html, /id="otp"/);
  const wrong = await b.submit(totp, { code: await otp('sam', Math.floor(Date.now() / 1000) - 3600) });
  assert.equal(wrong.status, 401, 'a code from an hour ago must be refused');
  const done = await b.submit(wrong, { code: await otp('sam') });
  const t = await exchange(flow, done.callback);
  assert.deepEqual(t.id.amr, ['pwd', 'otp', 'mfa']);
  assert.equal(t.id.acr, ACR_MFA);
  assert.equal(t.id.sub, 'sam');
  assert.deepEqual(t.id.roles, ['admin']);
  assert.equal(t.id.crm_user_id, 'u-admin');
  assert.ok(t.refresh_token, 'a refresh token comes with the code grant');

  const r1 = await token({ grant_type: 'refresh_token', refresh_token: t.refresh_token });
  assert.equal(r1.status, 200, JSON.stringify(r1.json));
  assert.notEqual(r1.json.refresh_token, t.refresh_token, 'refresh tokens rotate');
  assert.deepEqual(claimsOf(r1.json.id_token).amr, ['pwd', 'otp', 'mfa']);
  const reuse = await token({ grant_type: 'refresh_token', refresh_token: t.refresh_token });
  assert.equal(reuse.json.error, 'invalid_grant', 'a rotated refresh token is dead');
});

test('a wrong PKCE verifier is refused', async () => {
  const b = new Browser();
  const { flow, page } = await b.authorize();
  const done = await b.submit(page, { username: 'ivan', password: users.ivan.password });
  const { json } = await token({ grant_type: 'authorization_code', code: done.callback.searchParams.get('code'),
    redirect_uri: `${rpOrigin}/cb`, code_verifier: `${flow.verifier}x` });
  assert.equal(json.error, 'invalid_grant');
});

test('step-up: a password session asked for MFA gets only the TOTP prompt; prompt=login and max_age re-ask', async () => {
  const b = new Browser();
  let { flow, page } = await b.authorize();
  let done = await b.submit(page, { username: 'morgan', password: users.morgan.password });
  const first = await exchange(flow, done.callback);
  assert.deepEqual(first.id.amr, ['pwd'], 'no TOTP when MFA was not asked for');
  assert.equal(first.id.acr, ACR_PWD);

  ({ flow, page } = await b.authorize({ acr_values: ACR_MFA }));
  assert.match(page.html, /id="otp"/);
  assert.doesNotMatch(page.html, /id="password"/);
  done = await b.submit(page, { code: await otp('morgan') });
  const stepped = await exchange(flow, done.callback);
  assert.deepEqual(stepped.id.amr, ['pwd', 'otp', 'mfa']);
  assert.equal(stepped.id.acr, ACR_MFA);
  assert.equal(stepped.id.sid, first.id.sid, 'same IdP session');

  // An MFA session satisfies acr_values silently...
  ({ flow, page } = await b.authorize({ acr_values: ACR_MFA }));
  assert.equal((await exchange(flow, page.callback)).id.acr, ACR_MFA);
  // ...but not prompt=login or an exceeded max_age.
  for (const extra of [{ prompt: 'login', scope: 'openid' }, { max_age: '0' }]) {
    ({ page } = await b.authorize(extra));
    assert.match(page.html ?? '', /id="password"/, `password asked again for ${JSON.stringify(extra)}`);
  }
});

test('RP-initiated logout delivers a back-channel logout token', async () => {
  const b = new Browser();
  const { flow, page } = await b.authorize();
  const done = await b.submit(page, { username: 'alice', password: users.alice.password });
  const t = await exchange(flow, done.callback);
  const end = new URL('/session/end', issuer);
  end.searchParams.set('id_token_hint', t.id_token);
  end.searchParams.set('post_logout_redirect_uri', `${rpOrigin}/bye`);
  const confirm = await b.go(end);
  assert.match(confirm.html, /id="logout-yes"/);
  const bye = await b.submit(confirm, { logout: 'yes' });
  assert.equal(bye.callback?.pathname, '/bye');
  const lt = logoutTokens.map(claimsOf).find((c) => c.sid === t.id.sid);
  assert.ok(lt, 'logout token for the session reached the RP');
  assert.equal(lt.sub, 'alice');
  assert.ok(lt.events['http://schemas.openid.net/event/backchannel-logout']);
  // The IdP session is gone: a new authorization asks for the password.
  const again = await b.authorize();
  assert.match(again.page.html ?? '', /id="password"/);
});
