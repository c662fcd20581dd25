import { act, fireEvent, render, screen, waitFor } from "@testing-library/react";
import { afterEach, describe, expect, it, vi } from "vitest";
import { api, ApiError, online, setTokens, tokens, type Deployment, type Detection } from "../api";
import { actionState } from "../pages/DeploymentPage";
import { DetectionPanel } from "./DetectionPanel";
import { markersFrom } from "./FilesEditor";
import { SettingsPanel } from "./SettingsPanel";
import { ConnectionBanner, ErrorBox } from "./common";
import { UsageHistory } from "./StatusPanel";

afterEach(() => {
  vi.unstubAllGlobals();
  online.set(true);
  setTokens(null);
});

const json = (body: unknown, status = 200) => new Response(JSON.stringify(body), { status, headers: { "Content-Type": "application/json" } });

describe("markersFrom", () => {
  it("puts a 422's line and each warning's line on the editor", () => {
    const refusal = new ApiError(422, "INVALID_DOCKERFILE", "line 7: unknown instruction `BOGUS`.");
    expect(markersFrom(refusal, ["line 3: DL3008 Pin versions"])).toEqual([
      { line: 7, message: "INVALID_DOCKERFILE: line 7: unknown instruction `BOGUS`.", severity: "error" },
      { line: 3, message: "line 3: DL3008 Pin versions", severity: "warning" },
    ]);
    expect(markersFrom(new ApiError(422, "INVALID_DOCKERFILE", "The first instruction must be FROM."), [])[0].line).toBe(1);
    expect(markersFrom(new ApiError(0, "CONNECTION_LOST", "down"), [])).toEqual([]);
  });
});

describe("actionState", () => {
  const base = { previous_image_tag: null, dockerfile_content: "FROM x" };
  it("enables only what can apply", () => {
    expect(actionState({ ...base, status: "ready" })).toMatchObject({ deploy: true, stop: false, rollback: false });
    expect(actionState({ ...base, status: "building" })).toMatchObject({ deploy: false, stop: true, generate: false, cancel: true });
    expect(actionState({ ...base, status: "queued" }).cancel).toBe(true);
    expect(actionState({ ...base, status: "running" }).cancel).toBe(false);
    expect(actionState({ ...base, status: "running", previous_image_tag: "img:1" })).toMatchObject({ deploy: true, stop: true, rollback: true });
    expect(actionState({ ...base, status: "stopped", previous_image_tag: "img:1" })).toMatchObject({ stop: false, rollback: true });
    expect(actionState({ ...base, status: "ready", dockerfile_content: null }).deploy).toBe(false);
  });
});

describe("DetectionPanel", () => {
  const detection: Detection = {
    stack: "node", confidence: 64, framework: "express", package_manager: "npm", runtime_version: "20",
    has_dockerfile: false, has_compose: false, detected_db: "postgres", internal_port: 3000,
    start_command: "node server.js", app_path: "", evidence: [{ file: "package.json", reason: "depends on express" }],
    warnings: [], alternatives: ["bun", "deno", "python"], alternative_plans: { bun: {}, deno: {} }, apps: [],
  };
  it("shows the facts, the confidence as a meter, the evidence, and offers the alternatives it can build", () => {
    const onStack = vi.fn();
    render(<DetectionPanel detection={detection} stack="" onStack={onStack} appPath="" />);
    expect(screen.getByRole("meter").getAttribute("aria-valuenow")).toBe("64");
    expect(screen.getByText("depends on express")).toBeTruthy();
    expect(screen.getByText("postgres")).toBeTruthy();
    const select = screen.getByLabelText(/Stack to generate for/) as HTMLSelectElement;
    expect([...select.options].map((o) => o.value)).toEqual(["", "bun", "deno"]);
    fireEvent.change(select, { target: { value: "bun" } });
    expect(onStack).toHaveBeenCalledWith("bun");
  });
  it("lets the user pick a monorepo's app", () => {
    const onApp = vi.fn();
    const apps = [{ ...detection, app_path: "api" }, { ...detection, app_path: "web", stack: "static", framework: null }];
    render(<DetectionPanel detection={{ ...detection, apps }} stack="" onStack={() => {}} appPath="api" onApp={onApp} />);
    fireEvent.change(screen.getByLabelText(/holds 2 apps/), { target: { value: "web" } });
    expect(onApp).toHaveBeenCalledWith("web");
  });
});

describe("SettingsPanel", () => {
  it("generates again without naming the stack last generated (the app may be another stack now)", async () => {
    const sent: { url: string; body: unknown }[] = [];
    vi.stubGlobal("fetch", vi.fn(async (url: string, init: RequestInit) => {
      sent.push({ url, body: init.body ? JSON.parse(String(init.body)) : null });
      return url.endsWith("/env") ? json({ variables: [] }) : json({ deployment_id: 8 });
    }));
    vi.stubGlobal("scrollTo", vi.fn()); // navigating to the new deployment scrolls, which jsdom lacks
    const deployment = { id: 7, repository_id: 3, app_path: "", stack: "node", internal_port: 3000,
                         cpu_limit: null, memory_limit: null } as unknown as Deployment;
    render(<SettingsPanel deployment={deployment} />);
    fireEvent.click(screen.getByRole("button", { name: "Generate with these settings" }));
    await waitFor(() => expect(sent.some((s) => s.url.endsWith("/api/deployments/generate/3"))).toBe(true));
    const generate = sent.find((s) => s.url.endsWith("/api/deployments/generate/3"));
    expect(generate?.body).toEqual({ app_path: "", internal_port: 3000 });
  });
});

describe("API errors and the connection", () => {
  it("reads {detail, error_code} and shows both", async () => {
    vi.stubGlobal("fetch", vi.fn(async () => json({ detail: "Deployment 9 is building; wait until it finishes.", error_code: "INVALID_STATE" }, 409)));
    const error = await api("POST", "/api/deployments/9/deploy").catch((e) => e);
    expect(error).toBeInstanceOf(ApiError);
    render(<ErrorBox error={error} />);
    expect(screen.getByRole("alert").textContent).toContain("INVALID_STATE");
    expect(screen.getByRole("alert").textContent).toContain("wait until it finishes");
  });

  it("unwraps the success envelope", async () => {
    vi.stubGlobal("fetch", vi.fn(async () => json({ success: true, data: [1, 2] })));
    expect(await api("GET", "/api/repositories")).toEqual([1, 2]);
  });

  it("refreshes an expired access token once and retries", async () => {
    setTokens({ access_token: "old", refresh_token: "r1" });
    const calls: string[] = [];
    vi.stubGlobal("fetch", vi.fn(async (url: string, init: RequestInit) => {
      const auth = (init.headers as Record<string, string>)?.Authorization ?? "";
      calls.push(`${url} ${auth}`);
      if (url === "/api/auth/refresh") return json({ access_token: "new", refresh_token: "r2", token_type: "bearer" });
      return auth === "Bearer new" ? json({ success: true, data: "ok" }) : json({ detail: "expired", error_code: "TOKEN_EXPIRED" }, 401);
    }));
    expect(await api("GET", "/api/deployments")).toBe("ok");
    expect(calls).toEqual(["/api/deployments Bearer old", "/api/auth/refresh ", "/api/deployments Bearer new"]);
    expect(tokens.get()?.refresh_token).toBe("r2");
  });

  it("shows a banner while the API does not answer and says when it is back", async () => {
    vi.useFakeTimers({ shouldAdvanceTime: true });
    let up = false;
    vi.stubGlobal("fetch", vi.fn(async () => {
      if (!up) throw new TypeError("Failed to fetch");
      return json({ success: true, data: { status: "ok" } });
    }));
    render(<ConnectionBanner />);
    expect(screen.queryByTestId("connection-banner")).toBeNull();
    let error: ApiError | null = null;
    await act(async () => {
      error = (await api("GET", "/api/deployments").catch((e) => e)) as ApiError;
    });
    expect(error!.code).toBe("CONNECTION_LOST");
    await waitFor(() => expect(screen.getByTestId("connection-banner").textContent).toContain("Lost the connection"));
    up = true;
    await act(() => vi.advanceTimersByTimeAsync(2100));
    await waitFor(() => expect(screen.getByTestId("connection-banner").textContent).toContain("restored"));
    vi.useRealTimers();
  });
});

describe("UsageHistory", () => {
  it("charts the summed history and lists each compose service's latest figures", async () => {
    const sample = (at: string, web: number, db: number) => ({
      at,
      services: {
        web: { cpu_percent: 1.5, memory_mb: web, network_rx_bytes: 10, network_tx_bytes: 5 },
        db: { cpu_percent: 0.5, memory_mb: db, network_rx_bytes: 20, network_tx_bytes: 7 },
      },
      total: { cpu_percent: 2, memory_mb: web + db, network_rx_bytes: 30, network_tx_bytes: 12 },
    });
    const fetchImpl = vi.fn(async (_url: RequestInfo | URL, _init?: RequestInit) =>
      json({ success: true, data: { deployment_id: 4, interval_seconds: 15, samples: [sample("2026-11-29T07:00:00Z", 40, 20), sample("2026-11-29T07:00:15Z", 42, 21)] } }),
    );
    vi.stubGlobal("fetch", fetchImpl);
    render(<UsageHistory deploymentId={4} />);
    await waitFor(() => expect(screen.getByText("History (2 samples, every 15 s)")).toBeTruthy());
    expect(String(fetchImpl.mock.calls[0][0])).toContain("/api/deployments/4/metrics");
    expect(screen.getByText("63.0 MB")).toBeTruthy(); // the newest total: 42 + 21
    const rows = screen.getAllByRole("row").map((r) => r.textContent);
    expect(rows).toEqual(["ServiceCPU %Memory MB", "web1.542.0", "db0.521.0"]);
  });

  it("says so when nothing was sampled yet", async () => {
    vi.stubGlobal("fetch", vi.fn(async () => json({ success: true, data: { deployment_id: 5, interval_seconds: 15, samples: [] } })));
    render(<UsageHistory deploymentId={5} />);
    await waitFor(() => expect(screen.getByTestId("usage-history").textContent).toContain("No usage history yet"));
  });
});
