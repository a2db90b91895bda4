/**
 * A Prometheus stand-in for the bench's metrics row: `node metrics-scraper.js PORT
 * INTERVAL_MS` GETs http://127.0.0.1:PORT/metrics every INTERVAL_MS and reads the whole
 * answer, as a scraper does. Prints `scraping` once the first scrape answered 200.
 */
const [port, intervalArg] = process.argv.slice(2);
const url = `http://127.0.0.1:${port}/metrics`;
const intervalMs = Number(intervalArg ?? '1000');

async function scrape(): Promise<boolean> {
  try {
    const res = await fetch(url);
    await res.text();
    return res.ok;
  } catch {
    return false;
  }
}

let announced = false;
const tick = async (): Promise<void> => {
  const ok = await scrape();
  if (ok && !announced) {
    announced = true;
    console.log(`scraping ${url} every ${intervalMs} ms`);
  }
  setTimeout(() => void tick(), announced ? intervalMs : 50);
};
void tick();
