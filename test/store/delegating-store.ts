import type { AuditQuery, AuditRecord, CloseOutResult, RecordBatch, ServerRecord, ServerRow, Store } from '../../src/store/store.js';

/**
 * A Store that forwards every method to an inner one: the base of the tests' wrappers
 * (FaultyStore, CountingStore), which override only the methods they watch or break.
 */
export class DelegatingStore implements Store {
  constructor(readonly inner: Store) {}
  get kind() {
    return this.inner.kind;
  }
  open(): Promise<void> {
    return this.inner.open();
  }
  registerServer(r: ServerRecord): Promise<void> {
    return this.inner.registerServer(r);
  }
  setServerAddress(id: string, address: string): Promise<void> {
    return this.inner.setServerAddress(id, address);
  }
  touchServer(id: string, at: Date): Promise<void> {
    return this.inner.touchServer(id, at);
  }
  stopServer(id: string, at: Date): Promise<void> {
    return this.inner.stopServer(id, at);
  }
  closeOutServer(id: string, at: Date, code: number): Promise<number> {
    return this.inner.closeOutServer(id, at, code);
  }
  closeOutStaleServers(staleBefore: Date, at: Date): Promise<CloseOutResult> {
    return this.inner.closeOutStaleServers(staleBefore, at);
  }
  writeBatch(batch: RecordBatch): Promise<void> {
    return this.inner.writeBatch(batch);
  }
  writeAudit(rows: readonly AuditRecord[]): Promise<void> {
    return this.inner.writeAudit(rows);
  }
  auditEvents(channel: string, epoch: string, after: number, limit: number): Promise<AuditRecord[]> {
    return this.inner.auditEvents(channel, epoch, after, limit);
  }

  queryAudit(q: AuditQuery): Promise<AuditRecord[]> {
    return this.inner.queryAudit(q);
  }
  deleteAuditBefore(before: Date, limit: number): Promise<number> {
    return this.inner.deleteAuditBefore(before, limit);
  }
  auditBytes(): Promise<number> {
    return this.inner.auditBytes();
  }
  ping(): Promise<boolean> {
    return this.inner.ping();
  }
  listServers(): Promise<ServerRow[]> {
    return this.inner.listServers();
  }
  openSessionsByServer(): Promise<Map<string, number>> {
    return this.inner.openSessionsByServer();
  }
  close(): Promise<void> {
    return this.inner.close();
  }
}
