import { fireEvent, render, screen, waitFor } from "@testing-library/react";
import { afterEach, describe, expect, it, vi } from "vitest";
import { setTokens, type Repository } from "../api";
import { RepositoryActions } from "./RepositoryActions";

afterEach(() => {
  vi.unstubAllGlobals();
  setTokens(null);
});

const json = (body: unknown, status = 200) => new Response(JSON.stringify(body), { status, headers: { "Content-Type": "application/json" } });

const clone: Repository = {
  id: 7, name: "shop", path: "/var/portside/repos/shop-1a2b3c4d", url: "https://git.example/shop.git", branch: "main",
  created_at: "2026-11-29T05:00:00Z",
};
const folder: Repository = { ...clone, id: 8, name: "local", path: "/home/me/app", url: null, branch: null };

/** A fetch that records calls and answers each with the next queued response (held until released when asked). */
function fakeApi(...answers: (Response | Promise<Response>)[]) {
  const calls: string[] = [];
  const fetchImpl = vi.fn(async (url: string, init: RequestInit = {}) => {
    calls.push(`${init.method ?? "GET"} ${url}`);
    return answers.shift() ?? json({ detail: "unexpected", error_code: "NOT_FOUND" }, 404);
  });
  vi.stubGlobal("fetch", fetchImpl);
  return calls;
}

describe("RepositoryActions: Pull", () => {
  it("shows progress while git fetches, then what it did", async () => {
    let release!: (r: Response) => void;
    const calls = fakeApi(new Promise<Response>((resolve) => (release = resolve)));
    const onPulled = vi.fn();
    render(<RepositoryActions repo={clone} readOnly={false} onPulled={onPulled} onDeleted={() => {}} />);
    fireEvent.click(screen.getByRole("button", { name: "Pull shop" }));
    expect(await screen.findByText("Pulling…")).toBeTruthy();
    expect(screen.getByText(/Fetching main from https:\/\/git.example\/shop.git/)).toBeTruthy();
    expect((screen.getByRole("button", { name: "Delete shop" }) as HTMLButtonElement).disabled).toBe(true);
    release(json({ success: true, data: clone }));
    expect(await screen.findByText(/Pulled the newest commit of main/)).toBeTruthy();
    expect(calls).toEqual(["POST /api/repositories/7/pull"]);
    expect(onPulled).toHaveBeenCalledWith(clone);
    expect(screen.getByText("Pull")).toBeTruthy();
  });

  it("says a local folder has nothing to pull", async () => {
    fakeApi(json({ success: true, data: folder }));
    render(<RepositoryActions repo={folder} readOnly={false} onDeleted={() => {}} />);
    fireEvent.click(screen.getByRole("button", { name: "Pull local" }));
    expect(await screen.findByText(/Nothing to pull/)).toBeTruthy();
  });

  it("shows a refusal with its code", async () => {
    fakeApi(json({ detail: "git could not pull https://git.example/shop.git: not found.", error_code: "GIT_PULL_FAILED" }, 422));
    render(<RepositoryActions repo={clone} readOnly={false} onDeleted={() => {}} />);
    fireEvent.click(screen.getByRole("button", { name: "Pull shop" }));
    const alert = await screen.findByRole("alert");
    expect(alert.textContent).toContain("GIT_PULL_FAILED");
    expect(alert.textContent).toContain("git could not pull");
    expect(screen.queryByText(/Pulled the newest/)).toBeNull();
  });
});

describe("RepositoryActions: Delete", () => {
  it("asks first, saying what is removed, and deletes on confirmation", async () => {
    const calls = fakeApi(json({ success: true, data: { deleted: true } }));
    const onDeleted = vi.fn();
    render(<RepositoryActions repo={clone} readOnly={false} onDeleted={onDeleted} />);
    fireEvent.click(screen.getByRole("button", { name: "Delete shop" }));
    const dialog = screen.getByRole("dialog");
    expect(dialog.textContent).toContain("every deployment of it");
    expect(dialog.textContent).toContain("volumes");
    expect(dialog.textContent).toContain("/var/portside/repos/shop-1a2b3c4d");
    expect(calls).toEqual([]);
    fireEvent.click(screen.getByRole("button", { name: "Delete repository" }));
    await waitFor(() => expect(onDeleted).toHaveBeenCalled());
    expect(calls).toEqual(["DELETE /api/repositories/7"]);
  });

  it("cancels without calling the API, and tells a local folder stays on disk", () => {
    const calls = fakeApi();
    render(<RepositoryActions repo={folder} readOnly={false} onDeleted={() => {}} />);
    fireEvent.click(screen.getByRole("button", { name: "Delete local" }));
    expect(screen.getByRole("dialog").textContent).toContain("/home/me/app is yours and stays on disk");
    fireEvent.click(screen.getByRole("button", { name: "Cancel" }));
    expect(screen.queryByRole("dialog")).toBeNull();
    expect(calls).toEqual([]);
  });

  it("shows the 409 when a deployment still runs, and keeps the repository", async () => {
    fakeApi(json({ detail: "Repository 7 has deployments that are not stopped: 3 (running); stop them first.", error_code: "INVALID_STATE" }, 409));
    const onDeleted = vi.fn();
    render(<RepositoryActions repo={clone} readOnly={false} onDeleted={onDeleted} />);
    fireEvent.click(screen.getByRole("button", { name: "Delete shop" }));
    fireEvent.click(screen.getByRole("button", { name: "Delete repository" }));
    const alert = await screen.findByRole("alert");
    expect(alert.textContent).toContain("INVALID_STATE");
    expect(alert.textContent).toContain("stop them first");
    expect(onDeleted).not.toHaveBeenCalled();
    expect((screen.getByRole("button", { name: "Delete shop" }) as HTMLButtonElement).disabled).toBe(false);
  });
});

describe("RepositoryActions for a viewer", () => {
  it("disables both buttons", () => {
    const calls = fakeApi();
    render(<RepositoryActions repo={clone} readOnly onDeleted={() => {}} />);
    for (const name of ["Pull shop", "Delete shop"]) {
      const button = screen.getByRole("button", { name }) as HTMLButtonElement;
      expect(button.disabled).toBe(true);
      fireEvent.click(button);
    }
    expect(screen.queryByRole("dialog")).toBeNull();
    expect(calls).toEqual([]);
  });
});
