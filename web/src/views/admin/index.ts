import type { Route } from "../../router";

// The admin's pages (disputes, reports, audit, webhook endpoints): role `admin` only.
export const adminRoutes: Route[] = [];
