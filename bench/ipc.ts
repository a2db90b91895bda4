/**
 * Messages between the load generator (parent) and its client processes (sub-worker).
 * One parent, several workers; each worker owns a slice of the subscribers.
 *
 * Order of a run: parent sends `connect`; worker answers `connected`; while the publisher
 * runs the worker sends `progress` whenever its watermark moves; the parent sends `report`
 * and the worker answers `report`; the parent sends `close` and the worker exits.
 */
import type { Protocol, Target } from './client-protocols.js';
import type { SparseHistogram } from './histogram.js';

/** Parent → client process. */
export type ToWorker =
  | {
      cmd: 'connect';
      /** Servers to spread subscribers over, round-robin by global subscriber index. */
      targets: Target[];
      protocol: Protocol;
      channel: string;
      /** How many subscribers this worker opens. */
      count: number;
      /** Global index of this worker's first subscriber (for the round-robin). */
      firstIndex: number;
      /** Handshakes in flight at once. */
      concurrency: number;
      headers: Record<string, string>;
    }
  | { cmd: 'report'; firstSeq: number; endSeq: number }
  | { cmd: 'close' };

/** Client process → parent. */
export type FromWorker =
  | { ev: 'connected'; ok: number; failed: number; firstError?: string; ms: number }
  /** Every live subscriber of this worker has received (or skipped past) seq `wm`. */
  | { ev: 'progress'; wm: number }
  | {
      ev: 'report';
      /** First-time receipts with firstSeq <= seq < endSeq, summed over subscribers. */
      received: number;
      /** Sequences in the range that at least one subscriber of this worker missed. */
      incompleteSeqs: number;
      /** Events received with a seq not above the subscriber's last (duplicate or reordered). */
      duplicates: number;
      /** Subscribers whose connection closed during the run. */
      closed: number;
      firstClose?: string;
      /** Frames that were neither an event nor decodable as one. */
      unexpected: number;
      firstUnexpected?: string;
      /** Latency of measured-window events, microseconds. */
      latency: SparseHistogram;
    };
