import { fireEvent, render, screen } from "@testing-library/react";
import { afterEach, describe, expect, it, vi } from "vitest";
import { App } from "./App";
import { AuthProvider } from "./auth";
import { setTokens } from "./api";

const json = (body: unknown, status = 200) => new Response(JSON.stringify(body), { status, headers: { "Content-Type": "application/json" } });

afterEach(() => {
  vi.unstubAllGlobals();
  setTokens(null);
  history.replaceState(null, "", "/");
});

/** The auth routes as issue 11 names them, over an in-memory user list. */
function authApi() {
  const users: { email: string; password: string; role: string }[] = [];
  const calls: string[] = [];
  const fetchImpl = vi.fn(async (url: string, init: RequestInit = {}) => {
    const method = init.method ?? "GET";
    calls.push(`${method} ${url}`);
    const auth = (init.headers as Record<string, string>)?.Authorization;
    const body = init.body ? JSON.parse(init.body as string) : {};
    if (url === "/api/auth/register" && method === "POST") {
      users.push({ ...body, role: users.length ? "member" : "admin" });
      return json({ success: true, data: { id: users.length, email: body.email, role: users.at(-1)!.role } }, 201);
    }
    if (url === "/api/auth/login") {
      const u = users.find((x) => x.email === body.email && x.password === body.password);
      return u ? json({ access_token: `tok-${u.email}`, refresh_token: "r", token_type: "bearer" }) : json({ detail: "Wrong email or password.", error_code: "UNAUTHORIZED" }, 401);
    }
    const u = users.find((x) => auth === `Bearer tok-${x.email}`);
    if (!u) return json({ detail: "Sign in first.", error_code: "UNAUTHORIZED" }, 401);
    if (url === "/api/auth/me") return json({ success: true, data: { id: 1, email: u.email, role: u.role } });
    if (url === "/api/auth/logout") return json({ success: true, data: {} });
    if (url === "/api/deployments") return json({ success: true, data: [] });
    return json({ detail: "no", error_code: "NOT_FOUND" }, 404);
  });
  return { fetchImpl, calls };
}

describe("App", () => {
  it("a first-time user signs up, lands on the empty dashboard, and signs out", async () => {
    const a = authApi();
    vi.stubGlobal("fetch", a.fetchImpl);
    render(<AuthProvider><App /></AuthProvider>);
    await screen.findByRole("heading", { name: "Sign in" });
    fireEvent.click(screen.getByRole("button", { name: "First time here? Create an account" }));
    fireEvent.change(screen.getByLabelText("Email"), { target: { value: "me@example.com" } });
    fireEvent.change(screen.getByLabelText("Password"), { target: { value: "long enough password" } });
    fireEvent.click(screen.getByRole("button", { name: "Create account" }));
    await screen.findByText("Nothing deployed yet");
    expect(screen.getByRole("link", { name: "Users" })).toBeTruthy(); // the first user is admin
    expect(screen.getByText("me@example.com (admin)")).toBeTruthy();
    expect(a.calls).toContain("POST /api/auth/register");
    fireEvent.click(screen.getByRole("button", { name: "Sign out" }));
    await screen.findByRole("heading", { name: "Sign in" });
    expect(a.calls).toContain("POST /api/auth/logout");
    expect(localStorage.getItem("portside.tokens")).toBeNull();
  });

  it("a wrong password shows the API's message and code", async () => {
    const a = authApi();
    vi.stubGlobal("fetch", a.fetchImpl);
    render(<AuthProvider><App /></AuthProvider>);
    await screen.findByRole("heading", { name: "Sign in" });
    fireEvent.change(screen.getByLabelText("Email"), { target: { value: "who@example.com" } });
    fireEvent.change(screen.getByLabelText("Password"), { target: { value: "nope" } });
    fireEvent.click(screen.getByRole("button", { name: "Sign in" }));
    const alert = await screen.findByRole("alert");
    expect(alert.textContent).toContain("UNAUTHORIZED");
    expect(alert.textContent).toContain("Wrong email or password.");
  });

  it("runs without sign-in on a Portside that has no auth routes (GET /api/auth/me answers 404)", async () => {
    vi.stubGlobal("fetch", vi.fn(async (url: string) =>
      url === "/api/deployments" ? json({ success: true, data: [] }) : json({ detail: "Not Found", error_code: "NOT_FOUND" }, 404)));
    render(<AuthProvider><App /></AuthProvider>);
    await screen.findByText("Nothing deployed yet");
    expect(screen.queryByRole("button", { name: "Sign out" })).toBeNull();
  });
});
