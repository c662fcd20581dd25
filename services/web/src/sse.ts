// Server-Sent Events over fetch(): EventSource cannot send an Authorization header. Reconnects with
// Last-Event-ID after any drop, and drops an event whose numeric id is not newer than the last one seen, so a
// reconnect neither loses nor repeats lines.

import { authHeaders, online, refreshTokens } from "./api";

export interface SSEEvent {
  event: string;
  data: string;
  id: string | null;
}

export interface StreamOptions {
  url: string;
  onEvent: (e: SSEEvent) => void;
  onState?: (state: "connecting" | "open" | "reconnecting" | "closed") => void;
  lastEventId?: string | null;
  retryMs?: number;
  fetchImpl?: typeof fetch;
}

/** Parse an SSE byte stream's text into events; returns the unparsed remainder. */
export function parseChunk(buffer: string, emit: (e: SSEEvent) => void): string {
  const blocks = buffer.split(/\r?\n\r?\n/);
  const rest = blocks.pop() ?? "";
  for (const block of blocks) {
    let event = "message";
    let id: string | null = null;
    const data: string[] = [];
    let any = false;
    for (const line of block.split(/\r?\n/)) {
      if (!line || line.startsWith(":")) continue;
      const colon = line.indexOf(":");
      const field = colon === -1 ? line : line.slice(0, colon);
      let value = colon === -1 ? "" : line.slice(colon + 1);
      if (value.startsWith(" ")) value = value.slice(1);
      if (field === "event") event = value;
      else if (field === "data") {
        data.push(value);
        any = true;
      } else if (field === "id") id = value;
    }
    if (any) emit({ event, data: data.join("\n"), id });
  }
  return rest;
}

/** Start streaming; returns a function that stops it for good. */
export function openStream(opts: StreamOptions): () => void {
  const doFetch = opts.fetchImpl ?? fetch.bind(globalThis);
  let lastId = opts.lastEventId ?? null;
  let stopped = false;
  let controller: AbortController | null = null;
  let attempt = 0;

  const newer = (id: string) => {
    if (lastId === null) return true;
    const a = Number(id);
    const b = Number(lastId);
    return Number.isNaN(a) || Number.isNaN(b) ? id !== lastId : a > b;
  };

  const run = async () => {
    while (!stopped) {
      opts.onState?.(attempt === 0 ? "connecting" : "reconnecting");
      controller = new AbortController();
      try {
        const headers: Record<string, string> = { Accept: "text/event-stream", ...authHeaders() };
        if (lastId) headers["Last-Event-ID"] = lastId;
        const resp = await doFetch(opts.url, { headers, signal: controller.signal, cache: "no-store" });
        online.set(true);
        if (resp.status === 401 && (await refreshTokens())) continue;
        if (!resp.ok || !resp.body) throw new Error(`stream answered ${resp.status}`);
        opts.onState?.("open");
        attempt = 0;
        const reader = resp.body.getReader();
        const decoder = new TextDecoder();
        let buffer = "";
        for (;;) {
          const { value, done } = await reader.read();
          if (done) break;
          buffer = parseChunk(buffer + decoder.decode(value, { stream: true }), (e) => {
            if (e.id !== null) {
              if (!newer(e.id)) return; // already shown before the reconnect
              lastId = e.id;
            }
            opts.onEvent(e);
          });
        }
      } catch (exc) {
        if (stopped) break;
        if ((exc as Error)?.name === "TypeError") online.set(false);
      }
      if (stopped) break;
      attempt += 1;
      const wait = Math.min(opts.retryMs ?? 1000 * attempt, 10_000);
      await new Promise((r) => setTimeout(r, wait));
    }
    opts.onState?.("closed");
  };
  void run();
  return () => {
    stopped = true;
    controller?.abort();
  };
}
