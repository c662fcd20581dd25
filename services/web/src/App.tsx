import { useAuth } from "./auth";
import { ConnectionBanner } from "./components/common";
import { Dashboard } from "./pages/Dashboard";
import { DeploymentPage } from "./pages/DeploymentPage";
import { Login } from "./pages/Login";
import { Repositories } from "./pages/Repositories";
import { RepositoryPage } from "./pages/RepositoryPage";
import { Users } from "./pages/Users";
import { Link, match, usePath } from "./router";

function NotFound() {
  return (
    <main>
      <h1>Page not found</h1>
      <p><Link to="/">Back to the dashboard</Link></p>
    </main>
  );
}

function Page({ path, admin }: { path: string; admin: boolean }) {
  let p: Record<string, string> | null;
  if (path === "/") return <Dashboard />;
  if (path === "/repositories") return <Repositories />;
  if ((p = match("/repositories/:id", path))) return <RepositoryPage id={Number(p.id)} />;
  if ((p = match("/deployments/:id", path))) return <DeploymentPage id={Number(p.id)} />;
  if (path === "/users" && admin) return <Users />;
  return <NotFound />;
}

export function App() {
  const { user, loading, noAuth, signOut } = useAuth();
  const path = usePath();
  if (loading) {
    return (
      <>
        <ConnectionBanner />
        <p className="muted center" role="status">Loading Portside…</p>
      </>
    );
  }
  if (!user && !noAuth) {
    return (
      <>
        <ConnectionBanner />
        <Login />
      </>
    );
  }
  const admin = noAuth || user?.role === "admin";
  const nav = [
    ["/", "Dashboard"],
    ["/repositories", "Repositories"],
    ...(admin && !noAuth ? [["/users", "Users"]] : []),
  ];
  return (
    <>
      <a className="skip" href="#content">Skip to the content</a>
      <header className="top">
        <Link to="/" className="brand">Portside</Link>
        <nav aria-label="Main">
          {nav.map(([to, label]) => (
            <Link key={to} to={to} aria-current={path === to || (to !== "/" && path.startsWith(to)) ? "page" : undefined}>
              {label}
            </Link>
          ))}
        </nav>
        <div className="grow" />
        {user && (
          <span className="muted small">
            {user.email} ({user.role})
          </span>
        )}
        {user && <button onClick={() => void signOut()}>Sign out</button>}
      </header>
      <ConnectionBanner />
      <div id="content" tabIndex={-1}>
        <Page path={path} admin={admin} />
      </div>
    </>
  );
}
