// Who is signed in, what they may do, and signing in and out (an API key exchanged for a session cookie).
import { createContext, useCallback, useContext, useEffect, useMemo, useState, type ReactNode } from "react";
import { gql, onSignedOut, rest, setCsrfToken } from "./api/client";
import { graphql } from "./gql";

interface SessionInfo {
  authenticated_by: "session" | "api_key";
  user: { id: string; email: string; name: string };
  csrf_token: string | null;
  expires_at: string | null;
}

export interface Session {
  user: SessionInfo["user"];
  /** Permissions the user's team roles grant (global rights); ``admin`` grants all. */
  permissions: Set<string>;
  can: (permission: string) => boolean;
  isAdmin: boolean;
}

interface SessionState {
  session: Session | null;
  checking: boolean;
  signIn: (apiKey: string) => Promise<void>;
  signOut: () => Promise<void>;
}

const MyRoles = graphql(`
  query MyRoles {
    me {
      teams {
        role {
          permissions
        }
      }
    }
  }
`);

const MARKER = "ae_signed_in";

const SessionContext = createContext<SessionState | null>(null);

async function describe(info: SessionInfo): Promise<Session> {
  setCsrfToken(info.csrf_token);
  const me = (await gql(MyRoles)).me;
  const permissions = new Set((me?.teams ?? []).flatMap((t) => t.role.permissions));
  const isAdmin = permissions.has("admin");
  return { user: info.user, permissions, isAdmin, can: (p) => isAdmin || permissions.has(p) };
}

export function SessionProvider({ children }: { children: ReactNode }) {
  const [session, setSession] = useState<Session | null>(null);
  const [checking, setChecking] = useState(true);

  useEffect(() => {
    const signedOut = () => {
      // The marker cookie (readable, secret-free) says a session may exist; a dead one clears it.
      document.cookie = `${MARKER}=; Max-Age=0; Path=/; SameSite=Strict`;
      setCsrfToken(null);
      setSession(null);
    };
    const unsubscribe = onSignedOut(signedOut);
    if (!document.cookie.split("; ").some((c) => c.startsWith(`${MARKER}=`))) {
      setChecking(false);
      return unsubscribe;
    }
    rest<SessionInfo>("GET", "/auth/session")
      .then(describe)
      .then(setSession, () => setSession(null))
      .finally(() => setChecking(false));
    return unsubscribe;
  }, []);

  const signIn = useCallback(async (apiKey: string) => {
    const info = await rest<SessionInfo>("POST", "/auth/session", undefined, { Authorization: `Bearer ${apiKey}` });
    setSession(await describe(info));
  }, []);

  const signOut = useCallback(async () => {
    try {
      await rest("DELETE", "/auth/session");
    } finally {
      setCsrfToken(null);
      setSession(null);
    }
  }, []);

  const value = useMemo(() => ({ session, checking, signIn, signOut }), [session, checking, signIn, signOut]);
  return <SessionContext.Provider value={value}>{children}</SessionContext.Provider>;
}

export function useSession(): SessionState {
  const state = useContext(SessionContext);
  if (!state) throw new Error("useSession outside SessionProvider");
  return state;
}

/** The signed-in session (pages under the layout are only shown signed in). */
export function useSignedIn(): Session {
  const { session } = useSession();
  if (!session) throw new Error("not signed in");
  return session;
}

/** Whether a use case's ``permissions`` (UseCase.permissions: the caller's there) allow ``permission``. */
export function allows(permissions: readonly string[], permission: string): boolean {
  return permissions.includes(permission) || permissions.includes("admin");
}
