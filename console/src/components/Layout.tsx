// The frame of every signed-in page: skip link, navigation, theme toggle, sign-out.
import { useState } from "react";
import { NavLink, Outlet, useNavigate } from "react-router";
import { useSession, useSignedIn } from "../session";
import { applyTheme, storedTheme, type Theme } from "./theme";

const NEXT_THEME: Record<Theme, Theme> = { system: "light", light: "dark", dark: "system" };

export function Layout() {
  const session = useSignedIn();
  const { signOut } = useSession();
  const navigate = useNavigate();
  const [theme, setTheme] = useState<Theme>(storedTheme);

  const cycleTheme = () => {
    const next = NEXT_THEME[theme];
    applyTheme(next);
    setTheme(next);
  };

  return (
    <div className="app">
      <a className="skip-link" href="#main">
        Skip to content
      </a>
      <header className="topbar">
        <span className="brand">Adaptive Engine</span>
        <nav aria-label="Main">
          <ul>
            <li>
              <NavLink to="/use-cases">Use cases</NavLink>
            </li>
            <li>
              <NavLink to="/jobs">Jobs</NavLink>
            </li>
            <li>
              <NavLink to="/models">Models</NavLink>
            </li>
            <li>
              <NavLink to="/settings">Settings</NavLink>
            </li>
          </ul>
        </nav>
        <div className="topbar-end">
          <button type="button" onClick={cycleTheme} aria-label={`Theme: ${theme} (change)`} title="Change theme">
            {theme === "dark" ? "☾ Dark" : theme === "light" ? "☀ Light" : "◐ System"}
          </button>
          <span className="muted" title={session.user.email}>
            {session.user.name || session.user.email}
          </span>
          <button
            type="button"
            onClick={async () => {
              await signOut();
              navigate("/sign-in");
            }}
          >
            Sign out
          </button>
        </div>
      </header>
      <main id="main" tabIndex={-1}>
        <Outlet />
      </main>
    </div>
  );
}
