// The settings pages' own navigation: each shows only to users whose permissions reach it (API keys: everyone).
import type { ReactNode } from "react";
import { NavLink } from "react-router";
import { useSignedIn } from "../session";
import { Empty } from "./States";

const PAGES: { to: string; label: string; permission?: string }[] = [
  { to: "/settings/api-keys", label: "API keys" },
  { to: "/settings/users", label: "Users", permission: "user:manage" },
  { to: "/settings/teams", label: "Teams", permission: "team:manage" },
  { to: "/settings/roles", label: "Roles", permission: "role:manage" },
  { to: "/settings/integrations", label: "Integrations", permission: "integration:manage" },
];

/** A settings page: its heading, the settings navigation, and its content (or why it is not shown). */
export function SettingsPage({ title, permission, children }: { title: string; permission?: string; children: ReactNode }) {
  const session = useSignedIn();
  const allowed = !permission || session.can(permission);
  return (
    <>
      <nav aria-label="Settings" className="subnav">
        <ul>
          {PAGES.filter((p) => !p.permission || session.can(p.permission)).map((p) => (
            <li key={p.to}>
              <NavLink to={p.to}>{p.label}</NavLink>
            </li>
          ))}
        </ul>
      </nav>
      <h1>{title}</h1>
      {allowed ? children : <Empty title={`Only users with the ${permission} permission see this page`} />}
    </>
  );
}
