import { act, fireEvent, render, screen } from "@testing-library/react";
import { afterEach, describe, expect, it, vi } from "vitest";
import { levelOf, LogsPanel } from "./LogsPanel";

/** A stream the test writes SSE text into, as the API would. */
function controllableFetch() {
  const enc = new TextEncoder();
  let controller!: ReadableStreamDefaultController<Uint8Array>;
  const body = new ReadableStream<Uint8Array>({ start: (c) => void (controller = c) });
  const fetchImpl = vi.fn(async (_url: string) => new Response(body, { status: 200, headers: { "Content-Type": "text/event-stream" } }));
  return { fetchImpl, write: (text: string) => controller.enqueue(enc.encode(text)) };
}

const frame = () => act(() => new Promise((r) => setTimeout(r, 40)));

afterEach(() => vi.unstubAllGlobals());

describe("levelOf", () => {
  it("tells error and warn lines", () => {
    expect(levelOf("Traceback (most recent call last):")).toBe("error");
    expect(levelOf("npm WARN deprecated left-pad")).toBe("warn");
    expect(levelOf("Listening on 8000")).toBeNull();
  });
});

describe("LogsPanel", () => {
  it("shows build, app and system lines apart, coloured by level, and filters them", async () => {
    const s = controllableFetch();
    vi.stubGlobal("fetch", s.fetchImpl);
    render(<LogsPanel deploymentId={4} height={400} />);
    await frame();
    s.write("event: build\nid: 1\ndata: Step 1/2 : FROM python\n\n");
    s.write("event: system\nid: 2\ndata: starting container\n\n");
    s.write("event: app\nid: 3\ndata: ERROR something broke\n\n");
    s.write("event: app\nid: 4\ndata: warning: slow\n\n");
    await frame();
    const lines = screen.getAllByTestId("log-line");
    expect(lines.map((l) => l.className)).toEqual([
      "line src-build",
      "line src-system",
      "line src-app lvl-error",
      "line src-app lvl-warn",
    ]);
    expect(screen.getByTestId("stream-state").textContent).toBe("live");
    fireEvent.change(screen.getByPlaceholderText("Filter lines"), { target: { value: "broke" } });
    await frame();
    expect(screen.getAllByTestId("log-line").map((l) => l.textContent)).toEqual(["appERROR something broke"]);
    expect(screen.getByTestId("line-count").textContent).toBe("1 of 4 lines");
    fireEvent.change(screen.getByPlaceholderText("Filter lines"), { target: { value: "" } });
    fireEvent.click(screen.getByLabelText("build"));
    await frame();
    expect(screen.getAllByTestId("log-line")).toHaveLength(3);
    expect(s.fetchImpl.mock.calls[0][0]).toBe("/api/deployments/4/logs/stream");
  });

  it("keeps 100,000 lines and renders only the rows in view", async () => {
    const s = controllableFetch();
    vi.stubGlobal("fetch", s.fetchImpl);
    render(<LogsPanel deploymentId={1} height={360} />);
    await frame();
    let text = "";
    for (let i = 1; i <= 100_000; i++) text += `event: app\nid: ${i}\ndata: line ${i}\n\n`;
    s.write(text);
    await frame();
    await frame();
    expect(screen.getByTestId("line-count").textContent).toBe("100000 lines");
    const rendered = screen.getAllByTestId("log-line");
    expect(rendered.length).toBeLessThan(100);
    // It follows the newest line: the last line is among those rendered.
    expect(rendered.some((r) => r.textContent === "appline 100000")).toBe(true);
  });

  it("pauses auto-scroll when the user scrolls up, and resumes on request", async () => {
    const s = controllableFetch();
    vi.stubGlobal("fetch", s.fetchImpl);
    render(<LogsPanel deploymentId={2} height={360} />);
    await frame();
    let text = "";
    for (let i = 1; i <= 1000; i++) text += `event: build\nid: ${i}\ndata: line ${i}\n\n`;
    s.write(text);
    await frame();
    const box = screen.getByRole("log");
    Object.defineProperty(box, "clientHeight", { configurable: true, value: 360 });
    Object.defineProperty(box, "scrollHeight", { configurable: true, get: () => 18 * Number(screen.getByTestId("line-count").textContent!.split(" ")[0]) });
    box.scrollTop = 17640; // the end: 1000 lines of 18 px in a 360 px box
    fireEvent.scroll(box);
    box.scrollTop = 9000;
    fireEvent.scroll(box);
    await frame();
    expect(screen.getByText("Paused: scroll to the newest line")).toBeTruthy();
    s.write("event: build\nid: 1001\ndata: newer\n\n");
    await frame();
    expect(box.scrollTop).toBe(9000); // stays where the user is reading
    fireEvent.click(screen.getByText("Paused: scroll to the newest line"));
    await frame();
    expect(box.scrollTop).toBeGreaterThan(17000);
    expect(screen.queryByText("Paused: scroll to the newest line")).toBeNull();
  });
});
