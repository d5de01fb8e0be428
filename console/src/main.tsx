import { lazy, StrictMode, Suspense, type ReactNode } from "react";
import { createRoot } from "react-dom/client";
import { createBrowserRouter, Navigate, RouterProvider, useLocation } from "react-router";
import { Layout } from "./components/Layout";
import { Loading } from "./components/States";
import { applyTheme, storedTheme } from "./components/theme";
import { SessionProvider, useSession } from "./session";
import "./styles.css";

// Every page is its own chunk, loaded when first visited.
const SignIn = lazy(() => import("./pages/SignIn"));
const UseCases = lazy(() => import("./pages/UseCases"));
const UseCaseOverview = lazy(() => import("./pages/UseCaseOverview"));
const Interactions = lazy(() => import("./pages/Interactions"));
const InteractionDetail = lazy(() => import("./pages/InteractionDetail"));
const AbTests = lazy(() => import("./pages/AbTests"));
const AbTestDetail = lazy(() => import("./pages/AbTestDetail"));
const Jobs = lazy(() => import("./pages/Jobs"));
const JobDetail = lazy(() => import("./pages/JobDetail"));
const RunRecipe = lazy(() => import("./pages/RunRecipe"));
const Models = lazy(() => import("./pages/Models"));
const ModelDetail = lazy(() => import("./pages/ModelDetail"));
const Datasets = lazy(() => import("./pages/Datasets"));
const DatasetDetail = lazy(() => import("./pages/DatasetDetail"));
const Graders = lazy(() => import("./pages/Graders"));
const GraderDetail = lazy(() => import("./pages/GraderDetail"));
const Users = lazy(() => import("./pages/Users"));
const ApiKeys = lazy(() => import("./pages/ApiKeys"));
const Teams = lazy(() => import("./pages/Teams"));
const Roles = lazy(() => import("./pages/Roles"));
const Integrations = lazy(() => import("./pages/Integrations"));
const IntegrationDetail = lazy(() => import("./pages/IntegrationDetail"));
const NotFound = lazy(() => import("./pages/NotFound"));

function Page({ children }: { children: ReactNode }) {
  return <Suspense fallback={<Loading />}>{children}</Suspense>;
}

function RequireSession({ children }: { children: ReactNode }) {
  const { session, checking } = useSession();
  const location = useLocation();
  if (checking) return <Loading what="Checking your session" />;
  if (!session) {
    const next = location.pathname + location.search;
    return <Navigate to={`/sign-in${next !== "/" ? `?next=${encodeURIComponent(next)}` : ""}`} replace />;
  }
  return <>{children}</>;
}

const router = createBrowserRouter([
  { path: "/sign-in", element: <Page><SignIn /></Page> },
  {
    element: (
      <RequireSession>
        <Layout />
      </RequireSession>
    ),
    children: [
      { path: "/", element: <Navigate to="/use-cases" replace /> },
      { path: "/use-cases", element: <Page><UseCases /></Page> },
      { path: "/use-cases/:useCase", element: <Page><UseCaseOverview /></Page> },
      { path: "/use-cases/:useCase/interactions", element: <Page><Interactions /></Page> },
      { path: "/use-cases/:useCase/interactions/:id", element: <Page><InteractionDetail /></Page> },
      { path: "/use-cases/:useCase/ab-tests", element: <Page><AbTests /></Page> },
      { path: "/use-cases/:useCase/ab-tests/:key", element: <Page><AbTestDetail /></Page> },
      { path: "/use-cases/:useCase/datasets", element: <Page><Datasets /></Page> },
      { path: "/use-cases/:useCase/datasets/:key", element: <Page><DatasetDetail /></Page> },
      { path: "/use-cases/:useCase/graders", element: <Page><Graders /></Page> },
      { path: "/use-cases/:useCase/graders/:key", element: <Page><GraderDetail /></Page> },
      { path: "/jobs", element: <Page><Jobs /></Page> },
      { path: "/jobs/new", element: <Page><RunRecipe /></Page> },
      { path: "/jobs/:id", element: <Page><JobDetail /></Page> },
      { path: "/models", element: <Page><Models /></Page> },
      { path: "/models/:key", element: <Page><ModelDetail /></Page> },
      { path: "/settings", element: <Navigate to="/settings/api-keys" replace /> },
      { path: "/settings/api-keys", element: <Page><ApiKeys /></Page> },
      { path: "/settings/users", element: <Page><Users /></Page> },
      { path: "/settings/teams", element: <Page><Teams /></Page> },
      { path: "/settings/roles", element: <Page><Roles /></Page> },
      { path: "/settings/integrations", element: <Page><Integrations /></Page> },
      { path: "/settings/integrations/:id", element: <Page><IntegrationDetail /></Page> },
      { path: "*", element: <Page><NotFound /></Page> },
    ],
  },
]);

applyTheme(storedTheme());
createRoot(document.getElementById("root")!).render(
  <StrictMode>
    <SessionProvider>
      <RouterProvider router={router} />
    </SessionProvider>
  </StrictMode>,
);
