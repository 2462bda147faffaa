// Reference server for bench/run.sh: panva's oidc-provider configured for the
// client_credentials grant with a client_secret_post client, issuing RS256 JWT access
// tokens (RFC 9068 "at+jwt") through resource indicators, served over HTTPS.
//
// Env:
//   PORT       listen port on 127.0.0.1 (required)
//   TLS_CERT   PEM certificate chain (bench/run.sh passes Gatehouse's own leaf:
//   TLS_KEY    <data-dir>/tls/server.pem + server-key.pem, ECDSA P-256, so both servers
//              do exactly the same TLS work)
//   CLIENT_ID, CLIENT_SECRET  the confidential client
//
// The RSA-2048 signing key is generated at start (node:crypto), as Gatehouse generates its own.
import https from 'node:https';
import { generateKeyPairSync } from 'node:crypto';
import { readFileSync } from 'node:fs';
import Provider, { errors } from 'oidc-provider';

const port = Number(process.env.PORT);
if (!port) throw new Error('PORT is required');
const RESOURCE = 'https://graph.microsoft.com';
const SCOPE = 'User.Read.All';

const { privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
const jwk = { ...privateKey.export({ format: 'jwk' }), kid: 'bench-rs256', alg: 'RS256', use: 'sig' };

const provider = new Provider(`https://localhost:${port}`, {
  clients: [
    {
      client_id: process.env.CLIENT_ID || 'bench-client',
      client_secret: process.env.CLIENT_SECRET || 'bench-secret-0123456789abcdef0123456789',
      grant_types: ['client_credentials'],
      redirect_uris: [],
      response_types: [],
      token_endpoint_auth_method: 'client_secret_post',
      scope: SCOPE,
    },
  ],
  jwks: { keys: [jwk] },
  cookies: { keys: ['bench-cookie-key-0123456789abcdef0123456789'] },
  features: {
    devInteractions: { enabled: false },
    clientCredentials: { enabled: true },
    introspection: { enabled: false },
    revocation: { enabled: false },
    resourceIndicators: {
      enabled: true,
      defaultResource: () => RESOURCE,
      useGrantedResource: () => true,
      getResourceServerInfo: (ctx, resourceIndicator) => {
        if (resourceIndicator !== RESOURCE) throw new errors.InvalidTarget();
        return {
          scope: SCOPE,
          audience: RESOURCE,
          accessTokenTTL: 3600,
          accessTokenFormat: 'jwt',
          jwt: { sign: { alg: 'RS256' } },
        };
      },
    },
  },
  scopes: ['openid', 'offline_access', SCOPE],
  ttl: { ClientCredentials: 3600 },
});
provider.on('server_error', (ctx, err) => console.error('server_error', err));

const server = https.createServer(
  { cert: readFileSync(process.env.TLS_CERT), key: readFileSync(process.env.TLS_KEY) },
  provider.callback(),
);
server.keepAliveTimeout = 65_000;
server.listen(port, '127.0.0.1', () => {
  console.log(`oidc-provider ${process.version} listening on https://127.0.0.1:${port} pid ${process.pid}`);
});
for (const sig of ['SIGTERM', 'SIGINT']) process.on(sig, () => { server.close(); process.exit(0); });
