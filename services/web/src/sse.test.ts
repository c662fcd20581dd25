import { describe, expect, it } from "vitest";
import { openStream, parseChunk, type SSEEvent } from "./sse";

function sseBody(chunks: string[], close = true): ReadableStream<Uint8Array> {
  const enc = new TextEncoder();
  return new ReadableStream({
    start(controller) {
      for (const c of chunks) controller.enqueue(enc.encode(c));
      if (close) controller.close();
    },
  });
}

describe("parseChunk", () => {
  it("splits events, joins data lines, keeps the unfinished rest", () => {
    const got: SSEEvent[] = [];
    const rest = parseChunk("event: build\nid: 1\ndata: Step 1/3\n\n: ping\n\nevent: app\nid: 2\ndata: a\ndata: b\n\nevent: app\nda", (e) => got.push(e));
    expect(got).toEqual([
      { event: "build", id: "1", data: "Step 1/3" },
      { event: "app", id: "2", data: "a\nb" },
    ]);
    expect(rest).toBe("event: app\nda");
  });

  it("handles CRLF line ends", () => {
    const got: SSEEvent[] = [];
    parseChunk("event: system\r\nid: 7\r\ndata: hello\r\n\r\n", (e) => got.push(e));
    expect(got).toEqual([{ event: "system", id: "7", data: "hello" }]);
  });
});

describe("openStream", () => {
  it("reconnects with Last-Event-ID and neither loses nor repeats a line", async () => {
    const seen: (string | null)[] = [];
    const requests: Record<string, string>[] = [];
    // First connection: lines 1 and 2, then the connection drops. The second answers from the id it was given,
    // and (like a server that resends one line too many) repeats line 2 before 3.
    const bodies = [
      ["event: build\nid: 1\ndata: one\n\n", "event: build\nid: 2\ndata: two\n\n"],
      ["event: build\nid: 2\ndata: two\n\n", "event: progress\ndata: {\"step\": 1, \"total_steps\": 2}\n\n", "event: app\nid: 3\ndata: three\n\n"],
    ];
    let n = 0;
    const done = new Promise<void>((resolve) => {
      const stop = openStream({
        url: "/api/deployments/1/logs/stream",
        retryMs: 5,
        fetchImpl: async (_url, init) => {
          requests.push({ ...(init?.headers as Record<string, string>) });
          const chunks = bodies[Math.min(n++, bodies.length - 1)];
          return new Response(sseBody(n > bodies.length ? [] : chunks, n <= bodies.length), { status: 200 });
        },
        onEvent: (e) => {
          seen.push(e.event === "progress" ? `progress:${e.data}` : e.id);
          if (e.id === "3") {
            stop();
            resolve();
          }
        },
      });
    });
    await done;
    expect(seen).toEqual(["1", "2", 'progress:{"step": 1, "total_steps": 2}', "3"]);
    expect(requests[0]["Last-Event-ID"]).toBeUndefined();
    expect(requests[1]["Last-Event-ID"]).toBe("2");
  });

  it("sends the bearer token", async () => {
    localStorage.setItem("portside.tokens", JSON.stringify({ access_token: "abc", refresh_token: "r" }));
    const { setTokens } = await import("./api");
    setTokens({ access_token: "abc", refresh_token: "r" });
    let headers: Record<string, string> = {};
    await new Promise<void>((resolve) => {
      const stop = openStream({
        url: "/x",
        fetchImpl: async (_u, init) => {
          headers = init?.headers as Record<string, string>;
          return new Response(sseBody(["event: app\nid: 1\ndata: x\n\n"], false));
        },
        onEvent: () => {
          stop();
          resolve();
        },
      });
    });
    expect(headers.Authorization).toBe("Bearer abc");
    setTokens(null);
  });
});
