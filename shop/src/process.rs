//! One process of any topology: the modules it hosts, wired together.
//!
//! Every shop process, the monolith and each microservice included, is built here from its
//! [`ProcessSpec`] (which modules it hosts, whether it is the public entry point). What differs
//! between a monolith and a split deployment is decided by one question per module: *is it
//! hosted here?*
//!
//! - A module hosted here gets its in-process implementation (`Local*`) on this process's one
//!   database, which holds the tables of every module the process hosts; a module hosted
//!   elsewhere gets its HTTP client (one [`ServiceClient`] per upstream module, shared by every
//!   caller in this process, so the in-flight bound is per upstream module, across all the
//!   replicas of its process; two modules of one upstream process get two clients).
//! - Checkout is one local transaction ([`LocalCheckout`]) when orders, catalog, inventory and
//!   payments share the process (so their tables share the database); otherwise it is the saga
//!   ([`SagaCheckout`]) over whichever participants are local or remote.
//! - The edge serves the public API: hosted modules' routes locally, the product page composed
//!   here, other modules' routes forwarded ([`crate::gateway`]). Any other process serves its
//!   modules' routes (public and internal) behind the service credential, for the edge and for
//!   other processes. An edge that does not host every module also serves its modules' internal
//!   routes (behind the credential) to the processes that call them.
//! - The orders module's recovery loop runs beside the server of the process hosting orders.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use actix_web::middleware::from_fn;
use actix_web::{guard, web};

use crate::accounts::AccountsState;
use crate::auth::{SERVICE_TOKEN_HEADER, ServiceCredential, TokenKeys, require_service_credential};
use crate::catalog::{CatalogClient, CatalogState, LocalCatalog, SharedCatalog};
use crate::http_client::ServiceClient;
use crate::inventory::{InventoryClient, LocalInventory, SharedInventory};
use crate::orders::{CheckoutPolicy, LocalCheckout, OrdersState, SagaCheckout, SharedCheckout};
use crate::payments::{LocalPayments, PaymentsClient, SharedPayments};
use crate::product_page::ProductPages;
use crate::resilience::Resilience;
use crate::reviews::{LocalReviews, ReviewsClient, ReviewsState};
use crate::seam_faults::SeamFaults;
use crate::settings::default_port;
use crate::telemetry::Readiness;
use crate::topology::{Module, ProcessSpec};
use crate::{Application, Database, Settings};

/// One piece of a process's app: its shared state, or a module's routes.
type Mount = Arc<dyn Fn(&mut web::ServiceConfig) + Send + Sync>;

/// Opens the process's database (if it hosts a module) and binds its server.
pub async fn build(spec: &ProcessSpec, settings: &Settings) -> anyhow::Result<Application> {
    let name = spec.process_name();
    let token_keys =
        TokenKeys::new(&settings.security.token_secret, Duration::from_secs(settings.security.token_ttl_secs));
    let credential = ServiceCredential(settings.security.service_token.clone());
    let hosted: Vec<Module> = spec.modules.iter().copied().collect();
    let db = if hosted.is_empty() {
        None
    } else {
        Some(crate::open_database(settings, &format!("sqlite:{name}.db"), &hosted).await?)
    };
    let mut clients = Clients { settings, made: BTreeMap::new() };
    let parts = Parts::wire(spec, db.as_ref(), settings, &mut clients)?;

    // Everything the routes extract, registered once for the whole app.
    let mut state: Vec<Mount> = vec![data(token_keys), data(credential.clone())];
    state.extend(parts.state);

    // Routes: what the process serves openly (the edge) and behind the credential.
    let mut open: Vec<Mount> = Vec::new();
    let mut guarded: Vec<Mount> = Vec::new();
    for &module in &hosted {
        if let Some(public) = public_routes(module)
            && !spec.edge
        {
            guarded.push(public);
        }
        if let Some(internal) = internal_routes(module)
            && !spec.hosts_everything()
        {
            guarded.push(internal);
        }
    }
    let mut seam_faults = None;
    if spec.edge {
        // The public API in the monolith's order: accounts, catalog, the product page,
        // reviews, orders; a module hosted elsewhere is forwarded to its process.
        for module in Module::ALL {
            if module == Module::Reviews {
                open.push(Arc::new(crate::product_page::configure_public));
            }
            match (spec.hosts(module), public_routes(module)) {
                (true, Some(public)) => open.push(public),
                (false, Some(_)) => {
                    let upstream = clients.get(module)?;
                    open.push(Arc::new(move |cfg| {
                        crate::gateway::configure_forwarding(cfg, module, upstream.clone());
                    }));
                }
                (_, None) => {}
            }
        }
        seam_faults = settings.server.faults_enabled.then(|| SeamFaults::new(settings.seed.seed));
        let pages = parts.page.expect("the edge wires the product page");
        let (catalog, inventory, reviews) = match &seam_faults {
            Some(faults) => faults.wrap(pages.catalog, pages.inventory, pages.reviews),
            None => (pages.catalog, pages.inventory, pages.reviews),
        };
        state.push(data(ProductPages { catalog, inventory, reviews }));
    }
    // Ready: its database answers; a process without one (the gateway), every upstream
    // module's process is up.
    let readiness = match &db {
        Some(db) => Readiness::Database(db.clone()),
        None => Readiness::Upstreams(
            Module::ALL.iter().filter(|m| !spec.hosts(**m)).map(|m| clients.get(*m)).collect::<anyhow::Result<_>>()?,
        ),
    };
    state.push(data(readiness));
    // `full` sheds load at an edge that calls other processes (bounded requests in flight, a
    // controlled-delay queue); a process hosting every module calls nobody and sheds nothing.
    let admission = (spec.edge && !spec.hosts_everything() && settings.upstreams.resilience == Resilience::Full)
        .then(|| Arc::new(crate::admission::Admission::new(settings.upstreams.gateway_max_in_flight)));

    let (state, open, guarded) = (Arc::new(state), Arc::new(open), Arc::new(guarded));
    let edge = spec.edge;
    let mut app = Application::build(&name, settings, spec.default_port(), move |cfg: &mut web::ServiceConfig| {
        for part in state.iter() {
            part(cfg);
        }
        // Operations endpoints stay open (and never wait for admission).
        cfg.configure(crate::telemetry::configure_ops);
        if let Some(faults) = &seam_faults {
            crate::seam_faults::configure_admin(cfg, faults.clone(), credential.clone());
        }
        let mount_all = |parts: Arc<Vec<Mount>>| {
            move |scope: &mut web::ServiceConfig| {
                for part in parts.iter() {
                    part(scope);
                }
            }
        };
        if !edge {
            cfg.service(web::scope("").wrap(from_fn(require_service_credential)).configure(mount_all(guarded.clone())));
            return;
        }
        if !guarded.is_empty() {
            // The edge's own modules, for the processes that call them: only `/internal/`
            // paths with the service credential enter this scope (the guard is the credential
            // check). Without it the route does not exist (404, as at an edge that has no
            // internal routes): the public entry point does not reveal them.
            let credential = credential.clone();
            let internal = guard::fn_guard(move |ctx| {
                ctx.head().uri.path().starts_with("/internal/")
                    && ctx.head().headers().get(SERVICE_TOKEN_HEADER).is_some_and(|v| credential.accepts(v.as_bytes()))
            });
            cfg.service(web::scope("").guard(internal).configure(mount_all(guarded.clone())));
        }
        match &admission {
            Some(admission) => {
                let admission = admission.clone();
                let admit = from_fn(move |req, next| crate::admission::admit_or_shed(admission.clone(), req, next));
                cfg.service(web::scope("").wrap(admit).configure(mount_all(open.clone())));
            }
            None => mount_all(open.clone())(cfg),
        }
    })?;
    if let Some((checkout, deadline)) = parts.recovery {
        app.run_beside(crate::orders::recovery::run(checkout, deadline));
    }
    Ok(app)
}

/// App data as a mount.
fn data<T: Send + Sync + 'static>(value: T) -> Mount {
    let value = web::Data::new(value);
    Arc::new(move |cfg| {
        cfg.app_data(value.clone());
    })
}

fn public_routes(module: Module) -> Option<Mount> {
    match module {
        Module::Accounts => Some(Arc::new(crate::accounts::configure_public)),
        Module::Catalog => Some(Arc::new(crate::catalog::configure_public)),
        Module::Reviews => Some(Arc::new(crate::reviews::configure_public)),
        Module::Orders => Some(Arc::new(crate::orders::configure_public)),
        Module::Inventory | Module::Payments => None,
    }
}

fn internal_routes(module: Module) -> Option<Mount> {
    match module {
        Module::Catalog => Some(Arc::new(crate::catalog::configure_internal)),
        Module::Inventory => Some(Arc::new(crate::inventory::configure_internal)),
        Module::Reviews => Some(Arc::new(crate::reviews::configure_internal)),
        Module::Payments => Some(Arc::new(crate::payments::configure_internal)),
        Module::Accounts | Module::Orders => None,
    }
}

/// The HTTP clients of a process, one per upstream module, made when first needed.
struct Clients<'a> {
    settings: &'a Settings,
    made: BTreeMap<Module, ServiceClient>,
}

impl Clients<'_> {
    fn get(&mut self, module: Module) -> anyhow::Result<ServiceClient> {
        if let Some(client) = self.made.get(&module) {
            return Ok(client.clone());
        }
        let settings = self.settings;
        let client = ServiceClient::new(
            module.name(),
            settings.upstreams.url_of(module),
            &settings.security.service_token,
            settings.upstream_timeout(),
        )?
        .with_resilience(settings.upstreams.resilience);
        self.made.insert(module, client.clone());
        Ok(client)
    }
}

/// The modules' implementations, wired: the app data of the hosted modules' routes, the
/// product page's three parts (the edge), and the checkout whose recovery runs beside.
struct Parts {
    state: Vec<Mount>,
    page: Option<ProductPages>,
    recovery: Option<(SharedCheckout, Duration)>,
}

impl Parts {
    fn wire(
        spec: &ProcessSpec,
        db: Option<&Database>,
        settings: &Settings,
        clients: &mut Clients<'_>,
    ) -> anyhow::Result<Self> {
        let mut parts = Parts { state: Vec::new(), page: None, recovery: None };
        if spec.edge {
            parts.page = Some(ProductPages {
                catalog: catalog(spec, db, clients)?,
                inventory: inventory(spec, db, clients)?,
                reviews: match local(spec, db, Module::Reviews) {
                    Some(db) => Arc::new(LocalReviews(db.clone())),
                    None => Arc::new(ReviewsClient(clients.get(Module::Reviews)?)),
                },
            });
        }
        for module in spec.modules.iter().copied() {
            let db = db.expect("a process hosting a module has a database").clone();
            match module {
                Module::Accounts => parts.state.push(data(AccountsState { db })),
                Module::Catalog => parts.state.push(data(CatalogState { db })),
                Module::Inventory => parts.state.push(data(LocalInventory(db))),
                Module::Reviews => {
                    let catalog = catalog(spec, Some(&db), clients)?;
                    parts.state.push(data(ReviewsState { db, catalog }));
                }
                Module::Payments => {
                    parts.state.push(data(LocalPayments { db, latency: settings.payment_latency() }));
                }
                Module::Orders => {
                    let policy = CheckoutPolicy::from_settings(settings);
                    let one_database =
                        [Module::Catalog, Module::Inventory, Module::Payments].iter().all(|m| spec.hosts(*m));
                    let checkout: SharedCheckout = if one_database {
                        let payments = LocalPayments { db: db.clone(), latency: settings.payment_latency() };
                        Arc::new(LocalCheckout { db: db.clone(), payments, policy })
                    } else {
                        let payments: SharedPayments = match local(spec, Some(&db), Module::Payments) {
                            Some(db) => Arc::new(LocalPayments { db: db.clone(), latency: settings.payment_latency() }),
                            None => Arc::new(PaymentsClient(clients.get(Module::Payments)?)),
                        };
                        Arc::new(SagaCheckout {
                            db: db.clone(),
                            catalog: catalog(spec, Some(&db), clients)?,
                            inventory: inventory(spec, Some(&db), clients)?,
                            payments,
                            policy,
                        })
                    };
                    parts.recovery = Some((checkout.clone(), policy.recovery_deadline));
                    parts.state.push(data(OrdersState { db, checkout }));
                }
            }
        }
        Ok(parts)
    }
}

/// `module`'s database if this process hosts it.
fn local<'d>(spec: &ProcessSpec, db: Option<&'d Database>, module: Module) -> Option<&'d Database> {
    spec.hosts(module).then(|| db.expect("a process hosting a module has a database"))
}

/// The catalog as this process reaches it: in-process, or the catalog process's client.
fn catalog(spec: &ProcessSpec, db: Option<&Database>, clients: &mut Clients<'_>) -> anyhow::Result<SharedCatalog> {
    Ok(match local(spec, db, Module::Catalog) {
        Some(db) => Arc::new(LocalCatalog(db.clone())),
        None => Arc::new(CatalogClient(clients.get(Module::Catalog)?)),
    })
}

/// Inventory as this process reaches it.
fn inventory(spec: &ProcessSpec, db: Option<&Database>, clients: &mut Clients<'_>) -> anyhow::Result<SharedInventory> {
    Ok(match local(spec, db, Module::Inventory) {
        Some(db) => Arc::new(LocalInventory(db.clone())),
        None => Arc::new(InventoryClient(clients.get(Module::Inventory)?)),
    })
}

impl ProcessSpec {
    /// The port a process listens on when started by hand without `--port`.
    pub fn default_port(&self) -> u16 {
        match (self.edge, self.modules.iter().next()) {
            (true, _) | (false, None) => default_port::PUBLIC,
            (false, Some(first)) => match first {
                Module::Accounts => default_port::ACCOUNTS,
                Module::Catalog => default_port::CATALOG,
                Module::Inventory => default_port::INVENTORY,
                Module::Reviews => default_port::REVIEWS,
                Module::Payments => default_port::PAYMENTS,
                Module::Orders => default_port::ORDERS,
            },
        }
    }
}
