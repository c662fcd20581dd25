// The signed-in user: tokens in localStorage, /api/auth/me to know who we are, a refresh ahead of expiry.
import { createContext, useCallback, useContext, useEffect, useState, useSyncExternalStore, type ReactNode } from "react";
import { api, ApiError, refreshTokens, setTokens, tokens, type Tokens, type User } from "./api";

interface AuthState {
  user: User | null;
  loading: boolean;
  /** true when the API has no auth routes at all (GET /api/auth/me answers 404): the page runs without sign-in. */
  noAuth: boolean;
  signIn(email: string, password: string): Promise<void>;
  signUp(email: string, password: string): Promise<void>;
  signOut(): Promise<void>;
}

const Ctx = createContext<AuthState | null>(null);

export function useAuth(): AuthState {
  const v = useContext(Ctx);
  if (!v) throw new Error("useAuth outside AuthProvider");
  return v;
}

/** Seconds until a JWT expires (from its `exp` claim), or null when it cannot be read. */
export function secondsLeft(jwt: string): number | null {
  try {
    const payload = JSON.parse(atob(jwt.split(".")[1].replace(/-/g, "+").replace(/_/g, "/")));
    return typeof payload.exp === "number" ? payload.exp - Date.now() / 1000 : null;
  } catch {
    return null;
  }
}

export function AuthProvider({ children }: { children: ReactNode }) {
  const current = useSyncExternalStore(tokens.subscribe, tokens.get);
  const [user, setUser] = useState<User | null>(null);
  const [loading, setLoading] = useState(true);
  const [noAuth, setNoAuth] = useState(false);

  const loadMe = useCallback(async () => {
    try {
      setUser(await api<User>("GET", "/api/auth/me"));
      setNoAuth(false);
    } catch (exc) {
      if (exc instanceof ApiError && exc.status === 404) {
        setNoAuth(true);
        setUser(null);
      } else if (exc instanceof ApiError && exc.status === 0) {
        // the API is down: keep whoever was signed in; the banner says what is happening
      } else {
        setUser(null);
      }
    } finally {
      setLoading(false);
    }
  }, []);

  useEffect(() => {
    void loadMe();
  }, [loadMe, current?.access_token]);

  // Refresh a minute before the access token runs out, so a page left open stays signed in.
  useEffect(() => {
    if (!current) return;
    const left = secondsLeft(current.access_token);
    if (left === null) return;
    const t = setTimeout(() => void refreshTokens(), Math.max(5, left - 60) * 1000);
    return () => clearTimeout(t);
  }, [current]);

  const signIn = async (email: string, password: string) => {
    setTokens(await api<Tokens>("POST", "/api/auth/login", { email, password }));
  };
  const signUp = async (email: string, password: string) => {
    await api("POST", "/api/auth/register", { email, password });
    await signIn(email, password);
  };
  const signOut = async () => {
    const t = tokens.get();
    try {
      if (t) await api("POST", "/api/auth/logout", { refresh_token: t.refresh_token });
    } catch {
      /* signing out locally is what matters */
    }
    setTokens(null);
    setUser(null);
  };

  return <Ctx.Provider value={{ user, loading, noAuth, signIn, signUp, signOut }}>{children}</Ctx.Provider>;
}
