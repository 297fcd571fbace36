// The full MCP authorization flow against `kasm-mcp demo --oauth`, with a REAL authorization
// server and a REAL OAuth client, all on loopback:
//
// - the authorization server is `oidc-provider` (certified OpenID provider, pinned in
//   package.json) in this process: dynamic client registration, PKCE required, resource
//   indicators (RFC 8707) with this MCP server as the only resource, JWT access tokens;
//   login and consent are answered by our own interaction endpoint (no devInteractions);
// - the client is the official TypeScript SDK's StreamableHTTPClientTransport with an
//   OAuthClientProvider: it discovers everything from a bare 401, registers, runs the
//   authorization code flow with PKCE and `resource`, then lists and calls tools.
//
// Steps: bare 401 challenge → discovery, registration, authorization → viewer token sees only
// viewer tools → execute_kasm_command answers 403 insufficient_scope → step-up consent →
// the operator token runs a command in a real (simulated) session → the static token works on
// the same server → the AS rotates its signing key → a new client's token (new kid) works
// without restarting kasm-mcp → the AS stops → tokens signed by cached keys keep working →
// the Python SDK's OAuth client does the same flow headless → the audit log names
// principals and client ids and holds no token.
//
// Env: KASM_MCP_BIN (the built binary). Prints one JSON line per step; exits non-zero on the
// first failed check. Run by tests/clients/test_oauth_flow.py.

import { spawn } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';

import Provider from 'oidc-provider';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { UnauthorizedError } from '@modelcontextprotocol/sdk/client/auth.js';

const BIN = process.env.KASM_MCP_BIN;
const ACCOUNT = 'alice';
const STATIC_TOKEN = `static-${crypto.randomBytes(16).toString('hex')}`;
const DEADLINE_MS = 30_000;

const report = (step, extra = {}) => console.log(JSON.stringify({ step, ...extra }));
function check(condition, what, detail) {
  if (!condition) {
    throw new Error(`check failed: ${what}${detail === undefined ? '' : `: ${JSON.stringify(detail)}`}`);
  }
}

async function listen(server, port) {
  await new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, '127.0.0.1', resolve);
  });
  return server.address().port;
}

async function freePort() {
  const probe = net.createServer();
  const port = await listen(probe, 0);
  await new Promise((resolve) => probe.close(resolve));
  return port;
}

function rsaKey(kid) {
  const { privateKey } = crypto.generateKeyPairSync('rsa', { modulusLength: 2048 });
  return { ...privateKey.export({ format: 'jwk' }), kid, alg: 'RS256', use: 'sig' };
}

function kidOf(jwt) {
  return JSON.parse(Buffer.from(jwt.split('.')[0], 'base64url').toString()).kid;
}

// ---------------------------------------------------------------- the authorization server

const asServer = http.createServer((req, res) => route(req, res));
const asPort = await listen(asServer, 0);
const ISSUER = `http://127.0.0.1:${asPort}`;
const mcpPort = await freePort();
const RESOURCE = `http://127.0.0.1:${mcpPort}/mcp`;
const RESOURCE_SCOPES = 'kasm:read kasm:operate kasm:admin';

/** What the simulated user agrees to; every consent is recorded. */
const consents = [];
let signingKeys = [rsaKey('key-1')];

function makeProvider(keys) {
  const provider = new Provider(ISSUER, {
    jwks: { keys },
    features: {
      devInteractions: { enabled: false },
      registration: { enabled: true },
      resourceIndicators: {
        enabled: true,
        defaultResource: () => RESOURCE,
        useGrantedResource: () => true,
        getResourceServerInfo: (_ctx, indicator) => {
          if (indicator !== RESOURCE) {
            throw new Provider.errors.InvalidTarget(`unknown resource ${indicator}`);
          }
          return {
            scope: RESOURCE_SCOPES,
            audience: RESOURCE,
            accessTokenTTL: 600,
            accessTokenFormat: 'jwt',
            jwt: { sign: { alg: 'RS256' } },
          };
        },
      },
    },
    // The resource scopes are also registrable client scopes. The SDK registers its client
    // with the scope of the first challenge (kasm:read); like Keycloak's and Auth0's dynamic
    // registration, this AS lets every registered client ask for all of this resource's
    // scopes (the user's consent decides), so a later step-up to kasm:operate is allowed.
    scopes: ['openid', 'offline_access', ...RESOURCE_SCOPES.split(' ')],
    extraClientMetadata: {
      properties: ['kasm_test_scope_policy'],
      validator: (_ctx, key, _value, metadata) => {
        if (key === 'kasm_test_scope_policy') metadata.scope = RESOURCE_SCOPES;
      },
    },
    interactions: { url: (_ctx, interaction) => `/interaction/${interaction.uid}` },
    findAccount: (_ctx, sub) => ({ accountId: sub, claims: () => ({ sub }) }),
    // The claim kasm-mcp maps to a Kasm username (oauth.kasm_username_claim = "email").
    extraTokenClaims: (_ctx, token) => ({ email: `${token.accountId}@example.com` }),
    // Without a refresh token the SDK's step-up asks the user again instead of refreshing
    // to a token with the old scopes.
    issueRefreshToken: () => false,
    pkce: { required: () => true },
    cookies: { keys: ['kasm-mcp-oauth-flow-test'] },
    clientBasedCORS: () => true,
  });
  return { provider, callback: provider.callback() };
}

let as = makeProvider(signingKeys);

async function interaction(req, res) {
  const { provider } = as;
  const details = await provider.interactionDetails(req, res);
  const { prompt, params, session } = details;
  if (prompt.name === 'login') {
    await provider.interactionFinished(req, res, { login: { accountId: ACCOUNT } }, { mergeWithLastSubmission: false });
    return;
  }
  if (prompt.name === 'consent') {
    const grant = details.grantId
      ? await provider.Grant.find(details.grantId)
      : new provider.Grant({ accountId: session.accountId, clientId: params.client_id });
    const missing = prompt.details;
    if (missing.missingOIDCScope) grant.addOIDCScope(missing.missingOIDCScope.join(' '));
    if (missing.missingOIDCClaims) grant.addOIDCClaims(missing.missingOIDCClaims);
    for (const [indicator, scopes] of Object.entries(missing.missingResourceScopes ?? {})) {
      grant.addResourceScope(indicator, scopes.join(' '));
    }
    consents.push({ client_id: params.client_id, scope: params.scope, resource: params.resource });
    const grantId = await grant.save();
    await provider.interactionFinished(req, res, { consent: { grantId } }, { mergeWithLastSubmission: true });
    return;
  }
  res.statusCode = 400;
  res.end(`unexpected prompt ${prompt.name}`);
}

function route(req, res) {
  if (req.url.startsWith('/interaction/')) {
    interaction(req, res).catch((error) => {
      res.statusCode = 500;
      res.end(String(error));
    });
    return;
  }
  as.callback(req, res);
}

// ---------------------------------------------------------------- the user agent

/** Follow the authorization redirects like a browser (cookies kept) until the redirect URI. */
async function authorizeInBrowser(authorizationUrl, redirectUrl) {
  const jar = new Map();
  let url = new URL(authorizationUrl);
  for (let hop = 0; hop < 20; hop++) {
    const cookie = [...jar].filter(([, v]) => v).map(([k, v]) => `${k}=${v}`).join('; ');
    const response = await fetch(url, { redirect: 'manual', headers: cookie ? { cookie } : {} });
    for (const line of response.headers.getSetCookie()) {
      const [pair] = line.split(';');
      const eq = pair.indexOf('=');
      jar.set(pair.slice(0, eq).trim(), pair.slice(eq + 1).trim());
    }
    const location = response.headers.get('location');
    if (response.status < 300 || response.status >= 400 || !location) {
      throw new Error(`authorization stopped at ${url} with HTTP ${response.status}: ${await response.text()}`);
    }
    const next = new URL(location, url);
    if (next.href.startsWith(redirectUrl)) {
      const error = next.searchParams.get('error');
      if (error) throw new Error(`authorization error ${error}: ${next.searchParams.get('error_description')}`);
      return { code: next.searchParams.get('code'), state: next.searchParams.get('state') };
    }
    url = next;
  }
  throw new Error('too many redirects');
}

/** The SDK's OAuthClientProvider, kept in memory; the "browser" is automated. */
class TestOAuthProvider {
  constructor(name) {
    this.name = name;
    this._redirect = `http://127.0.0.1:${asPort + 1}/callback/${name}`;
    this.authorizations = [];
    this.accessTokens = [];
  }
  get redirectUrl() { return this._redirect; }
  get clientMetadata() {
    return {
      client_name: `kasm-mcp OAuth flow test (${this.name})`,
      redirect_uris: [this._redirect],
      grant_types: ['authorization_code'],
      response_types: ['code'],
      token_endpoint_auth_method: 'none',
    };
  }
  state() { this._state = crypto.randomBytes(12).toString('hex'); return this._state; }
  clientInformation() { return this._client; }
  saveClientInformation(info) { this._client = info; }
  tokens() { return this._tokens; }
  saveTokens(tokens) { this._tokens = tokens; this.accessTokens.push(tokens.access_token); }
  saveCodeVerifier(verifier) { this._verifier = verifier; }
  codeVerifier() { return this._verifier; }
  async redirectToAuthorization(url) {
    check(url.searchParams.get('code_challenge_method') === 'S256', 'PKCE S256 in the authorization request');
    check(url.searchParams.get('resource') === RESOURCE, 'resource parameter names the MCP server', url.href);
    this.authorizations.push({ scope: url.searchParams.get('scope') });
    const { code, state } = await authorizeInBrowser(url, this._redirect);
    check(state === this._state, 'state round-trips');
    this.code = code;
  }
}

/** Connect with the SDK, completing an authorization if the server asks for one. */
async function connect(oauth) {
  for (let attempt = 0; attempt < 2; attempt++) {
    const transport = new StreamableHTTPClientTransport(new URL(RESOURCE), { authProvider: oauth });
    const client = new Client({ name: `oauth-flow-${oauth.name}`, version: '1.0.0' });
    try {
      await client.connect(transport);
      return { client, transport };
    } catch (error) {
      if (!(error instanceof UnauthorizedError) || attempt > 0) throw error;
      await transport.finishAuth(oauth.code);
    }
  }
  throw new Error('unreachable');
}

/** Call a tool; when the server asks for more scope (403 step-up), authorize and retry. */
async function callWithStepUp(session, oauth, name, args) {
  try {
    return { result: await session.client.callTool({ name, arguments: args }), steppedUp: false };
  } catch (error) {
    if (!(error instanceof UnauthorizedError)) throw error;
    await session.transport.finishAuth(oauth.code);
    return { result: await session.client.callTool({ name, arguments: args }), steppedUp: true };
  }
}

const toolNames = async (client) => (await client.listTools()).tools.map((t) => t.name).sort();

// ---------------------------------------------------------------- kasm-mcp

const workDir = fs.mkdtempSync(path.join(os.tmpdir(), 'kasm-mcp-oauth-'));
const oauthToml = path.join(workDir, 'oauth.toml');
fs.writeFileSync(oauthToml, `[oauth]
enabled = true
issuer = "${ISSUER}"
resource = "${RESOURCE}"
jwks_min_refresh_s = 1
kasm_username_claim = "email"
auto_create_kasm_user = true
`);
const serverLog = path.join(workDir, 'kasm-mcp.log');
const logFd = fs.openSync(serverLog, 'w');
const server = spawn(BIN, ['demo', '--port', String(mcpPort), '--token', STATIC_TOKEN,
  '--start-delay-ms', '300', '--oauth', oauthToml], {
  stdio: ['ignore', 'ignore', logFd],
  env: { ...process.env, RUST_LOG: 'warn,audit=info,kasm_mcp::oauth=info' },
});
let serverExited = null;
server.on('exit', (code) => { serverExited = code; });

async function waitReady() {
  const started = Date.now();
  while (Date.now() - started < DEADLINE_MS) {
    if (serverExited !== null) throw new Error(`kasm-mcp exited with ${serverExited}: ${fs.readFileSync(serverLog, 'utf8')}`);
    try {
      if ((await fetch(`http://127.0.0.1:${mcpPort}/readyz`)).ok) return;
    } catch { /* not listening yet */ }
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error('kasm-mcp never became ready');
}

let exitCode = 0;
const everyToken = [STATIC_TOKEN];
try {
  await waitReady();
  report('started', { issuer: ISSUER, resource: RESOURCE });

  // 1. A bare request: 401 with the discovery challenge.
  const bare = await fetch(RESOURCE, {
    method: 'POST',
    headers: { 'content-type': 'application/json', accept: 'application/json, text/event-stream' },
    body: JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'tools/list' }),
  });
  const challenge = bare.headers.get('www-authenticate');
  const metadataUrl = `http://127.0.0.1:${mcpPort}/.well-known/oauth-protected-resource/mcp`;
  check(bare.status === 401, 'bare request is 401', bare.status);
  check(challenge === `Bearer resource_metadata="${metadataUrl}", scope="kasm:read"`, 'bare 401 challenge', challenge);
  report('bare-401', { challenge });

  // 2. Discovery, registration, authorization with PKCE and resource; a viewer token.
  const alice = new TestOAuthProvider('alice');
  const session = await connect(alice);
  check(alice._client?.client_id, 'dynamically registered');
  check(alice.authorizations.length === 1 && alice.authorizations[0].scope === 'kasm:read', 'first authorization asks the challenge scope', alice.authorizations);
  const viewerTools = await toolNames(session.client);
  check(viewerTools.includes('get_available_workspaces'), 'viewer sees read tools', viewerTools);
  check(!viewerTools.includes('execute_kasm_command') && !viewerTools.includes('create_kasm_session'), 'viewer does not see operator tools', viewerTools);
  const workspaces = await session.client.callTool({ name: 'get_available_workspaces', arguments: {} });
  check(!workspaces.isError && JSON.stringify(workspaces).includes('Terminal'), 'viewer calls a read tool', workspaces);
  report('viewer', { client_id: alice._client.client_id, tools: viewerTools.length, kid: kidOf(alice.accessTokens[0]) });

  // 3. Step-up: the viewer calls execute_kasm_command → 403 insufficient_scope → consent → retry.
  const viewerToken = alice.accessTokens.at(-1);
  const raw403 = await fetch(RESOURCE, {
    method: 'POST',
    headers: { authorization: `Bearer ${viewerToken}`, 'content-type': 'application/json', accept: 'application/json' },
    body: JSON.stringify({ jsonrpc: '2.0', id: 9, method: 'tools/call', params: { name: 'execute_kasm_command', arguments: { kasm_id: '0'.repeat(32), command: 'true' } } }),
  });
  const stepUpChallenge = raw403.headers.get('www-authenticate');
  check(raw403.status === 403, 'viewer exec is 403', raw403.status);
  check(stepUpChallenge === `Bearer error="insufficient_scope", scope="kasm:read kasm:operate", resource_metadata="${metadataUrl}"`, 'step-up challenge', stepUpChallenge);
  const { result: missing, steppedUp } = await callWithStepUp(session, alice, 'execute_kasm_command', { kasm_id: '0'.repeat(32), command: 'true' });
  check(steppedUp, 'the SDK stepped up on 403');
  check(alice.authorizations.at(-1).scope === 'kasm:read kasm:operate', 'step-up asks the challenge scopes', alice.authorizations);
  check(missing.isError && JSON.stringify(missing).includes('does not exist'), 'the stepped-up call reaches the tool', missing);
  const operatorTools = await toolNames(session.client);
  check(operatorTools.includes('execute_kasm_command') && !operatorTools.includes('create_kasm_user'), 'operator tool list', operatorTools);
  const created = await session.client.callTool({ name: 'create_kasm_session', arguments: { image_name: 'Terminal' } });
  check(!created.isError, 'operator creates a session', created);
  const kasmId = created.structuredContent.kasm_id;
  const ran = await session.client.callTool({ name: 'execute_kasm_command', arguments: { kasm_id: kasmId, command: 'echo oauth-ok' } });
  check(!ran.isError && JSON.stringify(ran.structuredContent).includes('oauth-ok'), 'operator runs a command', ran);
  await session.client.callTool({ name: 'destroy_kasm_session', arguments: { kasm_id: kasmId } });
  report('step-up', { challenge: stepUpChallenge, tools: operatorTools.length });

  // 4. The static token against the same running server.
  const staticTransport = new StreamableHTTPClientTransport(new URL(RESOURCE), {
    requestInit: { headers: { Authorization: `Bearer ${STATIC_TOKEN}` } },
  });
  const staticClient = new Client({ name: 'static-token', version: '1.0.0' });
  await staticClient.connect(staticTransport);
  const adminTools = await toolNames(staticClient);
  check(adminTools.includes('create_kasm_user'), 'static admin token sees admin tools', adminTools);
  const staticCall = await staticClient.callTool({ name: 'get_available_workspaces', arguments: {} });
  check(!staticCall.isError, 'static token calls a tool', staticCall);
  await staticClient.close();
  report('static-token', { tools: adminTools.length });

  // 5. Key rotation at the AS: a new signing key; a new client gets a token with the new kid.
  signingKeys = [rsaKey('key-2'), ...signingKeys];
  as = makeProvider(signingKeys);
  const bob = new TestOAuthProvider('bob');
  const rotated = await connect(bob);
  const newKid = kidOf(bob.accessTokens.at(-1));
  check(newKid === 'key-2', 'the new token is signed with the rotated key', newKid);
  const afterRotation = await rotated.client.callTool({ name: 'get_available_workspaces', arguments: {} });
  check(!afterRotation.isError, 'rotated key accepted without restarting kasm-mcp', afterRotation);
  report('rotation', { kid: newKid, client_id: bob._client.client_id });

  // 5b. The Python SDK's OAuth client, headless, against the same AS and server.
  const python = process.env.PYTHON ?? path.join(import.meta.dirname, '..', '..', '..', '.venv', 'bin', 'python');
  const pyRun = await new Promise((resolve) => {
    const child = spawn(python, [path.join(import.meta.dirname, 'python_flow.py'), RESOURCE], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    child.stdout.on('data', (d) => { out += d; });
    child.stderr.on('data', (d) => { err += d; });
    child.on('exit', (code) => resolve({ code, out, err }));
  });
  check(pyRun.code === 0, 'the Python SDK OAuth flow succeeds', pyRun.err.slice(-3000));
  const py = JSON.parse(pyRun.out.trim().split('\n').at(-1));
  check(py.scope === 'kasm:read' && !py.is_error, 'Python client: viewer token, tool call ok', py);
  check(py.tools.includes('get_available_workspaces') && !py.tools.includes('execute_kasm_command'), 'Python client sees viewer tools', py.tools);
  everyToken.push(py.access_token);
  report('python-sdk', { client_id: py.client_id, tools: py.tools.length });

  // 6. The AS stops: tokens signed by cached keys keep working.
  asServer.closeAllConnections();
  await new Promise((resolve) => asServer.close(resolve));
  const down = await fetch(`${ISSUER}/jwks`).then(() => 'up', () => 'down');
  check(down === 'down', 'the authorization server is stopped');
  for (const [who, s] of [['alice', session], ['bob', rotated]]) {
    const r = await s.client.callTool({ name: 'get_available_workspaces', arguments: {} });
    check(!r.isError, `${who}'s token works on cached keys with the AS down`, r);
  }
  report('as-down');
  await session.client.close();
  await rotated.client.close();

  // 7. The audit log: principals and client ids, no token.
  everyToken.push(...alice.accessTokens, ...bob.accessTokens);
  await new Promise((r) => setTimeout(r, 200));
  // eslint-disable-next-line no-control-regex
  const audit = fs.readFileSync(serverLog, 'utf8').replace(/\x1b\[[0-9;]*m/g, '');
  const toolLines = audit.split('\n').filter((l) => l.includes('tool call'));
  check(toolLines.some((l) => l.includes('oauth:alice') && l.includes(alice._client.client_id) && l.includes('execute_kasm_command')), 'audit names alice, her client and the tool');
  check(toolLines.some((l) => l.includes('oauth:alice') && l.includes(bob._client.client_id)), 'audit names the second client');
  check(toolLines.some((l) => l.includes('oauth:alice') && l.includes(py.client_id)), 'audit names the Python client');
  check(toolLines.some((l) => l.includes('principal="demo"') && !l.includes('client_id=')), 'audit names the static principal (no client id)');
  check(audit.split('\n').some((l) => l.includes('event="step_up"') && l.includes('oauth:alice') && l.includes('"decision":"deny"')), 'audit records the step-up refusal');
  for (const token of everyToken) {
    check(!audit.includes(token), 'no token in the server log');
    check(!audit.includes(token.split('.').at(-1)), 'no token signature in the server log');
  }
  report('audit', { tool_lines: toolLines.length, tokens_checked: everyToken.length, consents: consents.length });
  report('done');
} catch (error) {
  exitCode = 1;
  console.error(error?.stack ?? String(error));
  console.error('--- kasm-mcp log ---');
  console.error(fs.existsSync(serverLog) ? fs.readFileSync(serverLog, 'utf8').slice(-6000) : '(none)');
} finally {
  server.kill('SIGTERM');
  await new Promise((r) => (serverExited !== null ? r() : server.on('exit', r)));
  if (asServer.listening) {
    asServer.closeAllConnections();
    asServer.close();
  }
  fs.rmSync(workDir, { recursive: true, force: true });
}
process.exit(exitCode);
