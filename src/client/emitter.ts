/**
 * A small typed event emitter (the browser has EventTarget, but its events carry no
 * typed payload). `on` returns the function that removes the listener. A listener that
 * throws does not stop the others; its error is reported through `onListenerError`.
 */
export class Emitter<Events extends { [K in keyof Events]: unknown }> {
  private readonly listeners = new Map<keyof Events, Set<(payload: never) => void>>();

  /** Adds a listener; returns its removal. */
  on<K extends keyof Events>(event: K, listener: (payload: Events[K]) => void): () => void {
    let set = this.listeners.get(event);
    if (!set) this.listeners.set(event, (set = new Set()));
    set.add(listener as (payload: never) => void);
    return () => this.off(event, listener);
  }

  /** Removes a listener added with `on`. */
  off<K extends keyof Events>(event: K, listener: (payload: Events[K]) => void): void {
    this.listeners.get(event)?.delete(listener as (payload: never) => void);
  }

  /** Whether anyone listens to `event`. */
  protected listens<K extends keyof Events>(event: K): boolean {
    return (this.listeners.get(event)?.size ?? 0) > 0;
  }

  /** Calls every listener of `event` with `payload`. */
  protected emit<K extends keyof Events>(event: K, payload: Events[K]): void {
    const set = this.listeners.get(event);
    if (!set) return;
    for (const l of [...set]) {
      try {
        (l as (p: Events[K]) => void)(payload);
      } catch (err) {
        this.onListenerError(err);
      }
    }
  }

  /** Where a throwing listener's error goes; by default rethrown outside the emit loop. */
  protected onListenerError(err: unknown): void {
    queueMicrotask(() => {
      throw err;
    });
  }

  /** Drops every listener. */
  protected removeAllListeners(): void {
    this.listeners.clear();
  }
}
