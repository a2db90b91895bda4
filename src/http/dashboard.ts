/**
 * The admin dashboard's files (the `admin/` folder of the package, never `--public`),
 * served at `/admin/` by exact routes: one per file of the folder, read once at start.
 * A path that is not one of them goes on to the static files like any other path.
 */
import { readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Router } from './router.js';
import { createStaticHandler } from './static-files.js';

/** The dashboard folder shipped with zenconn (`admin/` beside `dist/`). */
export const DASHBOARD_DIR = fileURLToPath(new URL('../../../admin', import.meta.url));

/** Where the dashboard is served. */
export const DASHBOARD_PATH = '/admin/';

/**
 * The page may talk to its own origin only and load nothing from elsewhere (it works
 * offline); no other site may frame it.
 */
const CSP = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'";

/**
 * Registers `GET /admin/<file>` for every regular file of `dir` (its index at `/admin/`,
 * `/admin` redirected there). Returns the removers; none when `dir` does not exist (a
 * checkout without the folder serves no dashboard rather than failing).
 */
export function registerDashboard(router: Router, dir = DASHBOARD_DIR): Array<() => void> {
  let names: string[];
  try {
    names = readdirSync(dir).filter((n) => !n.startsWith('.') && statSync(join(dir, n)).isFile());
  } catch {
    return [];
  }
  const files = createStaticHandler({ root: dir });
  const removers: Array<() => void> = [];
  const serve = (name: string) => (req: Parameters<typeof files>[0], res: Parameters<typeof files>[1]): void => {
    req.url = '/' + encodeURIComponent(name);
    res.setHeader('Content-Security-Policy', CSP);
    res.setHeader('Referrer-Policy', 'no-referrer');
    files(req, res);
  };
  for (const name of names) removers.push(router.add('GET', DASHBOARD_PATH + name, serve(name)));
  if (names.includes('index.html')) {
    removers.push(router.add('GET', DASHBOARD_PATH, serve('index.html')));
    removers.push(
      router.add('GET', DASHBOARD_PATH.slice(0, -1), (_req, res) => {
        res.writeHead(301, { Location: DASHBOARD_PATH, 'Content-Type': 'text/plain' }).end('301 Moved Permanently');
      })
    );
  }
  return removers;
}
