import { fireEvent, render, screen, waitFor, within } from "@testing-library/react";
import { afterEach, describe, expect, it, vi } from "vitest";
import { setTokens, type Domains, type Release } from "../api";
import { DomainsPanel } from "./DomainsPanel";
import { ReleasesPanel } from "./ReleasesPanel";

afterEach(() => {
  vi.unstubAllGlobals();
  setTokens(null);
});

const json = (body: unknown, status = 200) => new Response(JSON.stringify(body), { status, headers: { "Content-Type": "application/json" } });
const ok = (data: unknown) => json({ success: true, data });

/** A fetch that records each call (method, url, body) and answers with the next queued response. */
function fakeApi(...answers: Response[]) {
  const calls: string[] = [];
  vi.stubGlobal("fetch", vi.fn(async (url: string, init: RequestInit = {}) => {
    calls.push(`${init.method ?? "GET"} ${url}${init.body ? ` ${init.body}` : ""}`);
    return answers.shift() ?? json({ detail: "unexpected", error_code: "NOT_FOUND" }, 404);
  }));
  return calls;
}

const named: Domains = {
  domains: ["shop.example.com", "shop-4.apps.example.com"],
  urls: ["https://shop.example.com", "https://shop-4.apps.example.com"],
  default_domain: "shop-4.apps.example.com",
};

describe("DomainsPanel", () => {
  it("lists the names with their URLs; the default one has no Remove", async () => {
    fakeApi(ok(named));
    render(<DomainsPanel deploymentId={4} />);
    const link = await screen.findByRole("link", { name: "https://shop.example.com" });
    expect(link.getAttribute("href")).toBe("https://shop.example.com");
    expect(screen.getByRole("button", { name: "Remove shop.example.com" })).toBeTruthy();
    expect(screen.queryByRole("button", { name: "Remove shop-4.apps.example.com" })).toBeNull();
    expect(screen.getByText("(default)")).toBeTruthy();
  });

  it("adds a name by writing the names set here plus the new one, never the default", async () => {
    const after = { ...named, domains: ["shop.example.com", "www.example.com", named.default_domain!], urls: [] };
    const calls = fakeApi(ok(named), ok(after));
    render(<DomainsPanel deploymentId={4} />);
    await screen.findByText("shop.example.com");
    fireEvent.change(screen.getByLabelText("Domain name"), { target: { value: " WWW.example.com. " } });
    fireEvent.click(screen.getByRole("button", { name: "Add domain" }));
    expect(await screen.findByText(/www.example.com added/)).toBeTruthy();
    expect(calls[1]).toBe('PUT /api/deployments/4/domains {"domains":["shop.example.com","www.example.com"]}');
    expect(screen.getAllByText("proxy off")).toHaveLength(3); // no URLs while the proxy is off
    expect((screen.getByLabelText("Domain name") as HTMLInputElement).value).toBe("");
  });

  it("checks the name as you type and shows the API's refusal with its code", async () => {
    fakeApi(ok(named), json({ detail: "api.example.com already routes to another deployment; remove it there first or choose another name.", error_code: "DOMAIN_TAKEN" }, 409));
    render(<DomainsPanel deploymentId={4} />);
    await screen.findByText("shop.example.com");
    const input = screen.getByLabelText("Domain name");
    const add = screen.getByRole("button", { name: "Add domain" }) as HTMLButtonElement;
    fireEvent.change(input, { target: { value: "not a name" } });
    expect(screen.getByText(/dot-separated labels/)).toBeTruthy();
    expect(add.disabled).toBe(true);
    fireEvent.change(input, { target: { value: "shop.example.com" } });
    expect(screen.getByText(/already one of this deployment's names/)).toBeTruthy();
    expect(add.disabled).toBe(true);
    fireEvent.change(input, { target: { value: "api.example.com" } });
    fireEvent.click(add);
    const alert = await screen.findByRole("alert");
    expect(alert.textContent).toContain("DOMAIN_TAKEN");
    expect(alert.textContent).toContain("already routes to another deployment");
    expect((input as HTMLInputElement).value).toBe("api.example.com"); // kept, to fix and try again
  });

  it("removes a name by writing the others", async () => {
    const calls = fakeApi(ok(named), ok({ ...named, domains: [named.default_domain], urls: [named.urls[1]] }));
    render(<DomainsPanel deploymentId={4} />);
    fireEvent.click(await screen.findByRole("button", { name: "Remove shop.example.com" }));
    expect(await screen.findByText("shop.example.com removed.")).toBeTruthy();
    expect(calls[1]).toBe('PUT /api/deployments/4/domains {"domains":[]}');
    expect(screen.queryByRole("button", { name: /^Remove/ })).toBeNull();
  });

  it("lets a viewer look, not change", async () => {
    fakeApi(ok(named));
    render(<DomainsPanel deploymentId={4} readOnly />);
    expect(((await screen.findByRole("button", { name: "Remove shop.example.com" })) as HTMLButtonElement).disabled).toBe(true);
    expect((screen.getByLabelText("Domain name") as HTMLInputElement).disabled).toBe(true);
  });
});

const releases: Release[] = [
  { id: 12, image_tag: "portside/shop-4:3", created_at: "2026-11-29T07:10:00Z", cpu_limit: 0.5, memory_limit: "256m", env_keys: ["GREETING", "X"] },
  { id: 9, image_tag: "portside/shop-4:2", created_at: "2026-11-29T07:00:00Z", cpu_limit: null, memory_limit: null, env_keys: ["GREETING"] },
];

describe("ReleasesPanel", () => {
  it("lists the releases newest first and marks the one running", async () => {
    fakeApi(ok(releases));
    render(<ReleasesPanel deploymentId={4} runningImage="portside/shop-4:3" busy={false} onRolledBack={() => {}} />);
    const rows = await screen.findAllByRole("row");
    expect(rows.map((r) => within(r).queryByText(/^#\d+/)?.textContent)).toEqual([undefined, "#12running", "#9"]);
    expect(within(rows[1]).getByText("GREETING, X")).toBeTruthy();
    expect((screen.getByRole("button", { name: "Roll back to release 12" }) as HTMLButtonElement).disabled).toBe(true);
    expect((screen.getByRole("button", { name: "Roll back to release 9" }) as HTMLButtonElement).disabled).toBe(false);
  });

  it("rolls back to a release after asking, then lets the page reload", async () => {
    const calls = fakeApi(ok(releases), ok({ deployment_id: 4, status: "queued" }));
    const onRolledBack = vi.fn();
    render(<ReleasesPanel deploymentId={4} runningImage="portside/shop-4:3" busy={false} onRolledBack={onRolledBack} />);
    fireEvent.click(await screen.findByRole("button", { name: "Roll back to release 9" }));
    const dialog = screen.getByRole("dialog");
    expect(dialog.textContent).toContain("portside/shop-4:2");
    fireEvent.click(within(dialog).getByRole("button", { name: "Roll back" }));
    await waitFor(() => expect(onRolledBack).toHaveBeenCalled());
    expect(calls.filter((c) => c.startsWith("POST"))).toEqual(["POST /api/deployments/4/rollback?release_id=9"]);
  });

  it("shows a refusal with its code, and waits while the deployment is busy", async () => {
    fakeApi(ok(releases), json({ detail: "The image portside/shop-4:2 of release 9 was removed; choose a newer release.", error_code: "NO_PREVIOUS_IMAGE" }, 409));
    const { rerender } = render(<ReleasesPanel deploymentId={4} runningImage="portside/shop-4:3" busy={false} onRolledBack={() => {}} />);
    fireEvent.click(await screen.findByRole("button", { name: "Roll back to release 9" }));
    fireEvent.click(within(screen.getByRole("dialog")).getByRole("button", { name: "Roll back" }));
    expect((await screen.findByRole("alert")).textContent).toContain("NO_PREVIOUS_IMAGE");
    rerender(<ReleasesPanel deploymentId={4} runningImage="portside/shop-4:3" busy onRolledBack={() => {}} />);
    expect((screen.getByRole("button", { name: "Roll back to release 9" }) as HTMLButtonElement).disabled).toBe(true);
  });

  it("says when there is no release yet", async () => {
    fakeApi(ok([]));
    render(<ReleasesPanel deploymentId={4} runningImage={null} busy={false} onRolledBack={() => {}} />);
    expect(await screen.findByText(/No release yet/)).toBeTruthy();
  });
});
