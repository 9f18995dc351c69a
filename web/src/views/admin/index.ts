import type { Route } from "../../router";
import { AdminAudit, AdminDisputes, AdminReports, AdminWebhooks } from "./admin";

// The admin's pages (disputes, reports, audit, webhook endpoints): role `admin` only. The API
// decides (403 for anyone else); the client only hides them from users.
export const adminRoutes: Route[] = [
  { path: "/admin/disputes", title: "Admin: disputes", view: AdminDisputes, access: "admin" },
  { path: "/admin/reports", title: "Reports", view: AdminReports, access: "admin" },
  { path: "/admin/audit", title: "Audit", view: AdminAudit, access: "admin" },
  { path: "/admin/webhooks", title: "Webhooks", view: AdminWebhooks, access: "admin" },
];
