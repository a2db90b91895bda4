/** The file the agent forks for each worker (see worker.ts). */
import { runWorker } from './worker.js';

runWorker().catch((err: unknown) => {
  process.stderr.write(`zenconn worker: ${err instanceof Error ? err.stack ?? err.message : String(err)}\n`);
  process.exit(1);
});
