// The image's HEALTHCHECK (and compose.yaml's): exits 0 when GET /healthz on this
// container's zenconn answers 200 within 2.5 s, 1 otherwise. The slim Node.js image has
// no curl or wget, hence a script.
//
// Port: ZENCONN_PORT (default 8080). Scheme: HTTPS when ZENCONN_TLS_CERT is set (zenconn
// serves TLS itself); the certificate is not checked, since this only asks "is it up".
import { request as httpRequest } from 'node:http';
import { request as httpsRequest } from 'node:https';

const port = Number(process.env.ZENCONN_PORT || 8080);
const tls = Boolean(process.env.ZENCONN_TLS_CERT);
const request = tls ? httpsRequest : httpRequest;

const req = request(
  { host: '127.0.0.1', port, path: '/healthz', method: 'GET', timeout: 2500, rejectUnauthorized: false },
  (res) => {
    res.resume();
    process.exit(res.statusCode === 200 ? 0 : 1);
  }
);
req.on('timeout', () => req.destroy(new Error('timed out')));
req.on('error', (err) => {
  process.stderr.write(`healthcheck: ${err.message}\n`);
  process.exit(1);
});
req.end();
