// The state of step 3 outside React: one entry per mapped customer with its ticket rule as
// saved and as edited, the HaloPSA sites and users it chooses from, and its save state. Panels
// subscribe to their own entry, so an edit re-renders one panel rather than thousands.
import type {
  CustomerMappingView,
  HaloSiteOption,
  HaloTicketTypeOption,
  HaloUserOption,
  SavedTicketRuleResponse,
  SitesResponse,
  TicketRuleRequest,
  TicketRuleResponse,
  TicketRuleView,
  TicketTypesResponse,
  UsersResponse,
} from '../../../src/contract/halopsa.ts';
import type {
  DomainGroupsResponse,
  DomainGroupView,
  DomainsResponse,
  DomainView,
} from '../../../src/contract/platform.ts';
import { api, ApiError, messageOf } from '../api.ts';
import { count } from '../format.ts';

export type TargetList = 'dns' | 'thresholdDomains' | 'thresholdGroups' | 'forensic';

/** A ticket rule as the panel edits it. */
export interface RuleDraft {
  ticketTypeId: number | null;
  siteId: number | null;
  userId: number | null;
  dns: string[];
  thresholdDomains: string[];
  thresholdGroups: string[];
  forensic: string[];
}

export interface PanelState {
  status: 'loading' | 'ready' | 'failed';
  loadError: string | null;
  domains: DomainView[];
  groups: DomainGroupView[];
  sites: HaloSiteOption[];
  /** End users of the chosen site; null while none is chosen or while they load. */
  users: HaloUserOption[] | null;
  usersError: string | null;
  /** The rule as stored on the server; null when the customer has none yet. */
  saved: TicketRuleView | null;
  draft: RuleDraft;
  /** The user changed the draft since the last save. */
  dirty: boolean;
  saveState: 'idle' | 'waiting' | 'saving' | 'saved' | 'failed';
  saveError: { field: 'ticketTypeId' | 'siteId' | 'userId' | null; message: string } | null;
  /** Sentences on the changes the last Resync made. */
  notes: string[];
  busy: string | null;
}

/** Selections of a draft that are no longer valid, each with its sentence. */
export interface DraftProblems {
  ticketTypeId?: string;
  siteId?: string;
  userId?: string;
}

const SAVE_DELAY_MS = 800;
const LOAD_CONCURRENCY = 4;

function draftOf(rule: TicketRuleView | null, defaultTicketTypeId: number | null): RuleDraft {
  return {
    ticketTypeId: rule?.ticketTypeId ?? defaultTicketTypeId,
    siteId: rule?.siteId ?? null,
    userId: rule?.userId ?? null,
    dns: rule?.dnsDomainIds ?? [],
    thresholdDomains: rule?.thresholdDomainIds ?? [],
    thresholdGroups: rule?.thresholdGroupIds ?? [],
    forensic: rule?.forensicDomainIds ?? [],
  };
}

/** Count the alert rows a draft selects, over all three kinds. */
export function selectedRows(draft: RuleDraft): number {
  return (
    draft.dns.length +
    draft.thresholdDomains.length +
    draft.thresholdGroups.length +
    draft.forensic.length
  );
}

/** Manage every panel's state; see the file comment. */
export class AlertRules {
  private readonly panels = new Map<string, PanelState>();
  private readonly listeners = new Map<string, Set<() => void>>();
  private readonly globalListeners = new Set<() => void>();
  private readonly timers = new Map<string, number>();
  private readonly saves = new Map<string, Promise<boolean>>();
  private readonly loadQueue: (() => Promise<void>)[] = [];
  private loadsRunning = 0;
  private version = 0;
  private sitesByClient = new Map<number, Promise<HaloSiteOption[]>>();

  ticketTypes: HaloTicketTypeOption[];
  defaultTicketTypeId: number | null;

  constructor(
    ticketTypes: TicketTypesResponse,
    private readonly mappings: ReadonlyMap<string, CustomerMappingView>,
    private readonly domainsByCustomer: ReadonlyMap<string, DomainView[]>,
  ) {
    this.ticketTypes = ticketTypes.ticketTypes;
    this.defaultTicketTypeId = ticketTypes.defaultTicketTypeId;
  }

  // Subscriptions, in the shape useSyncExternalStore expects.

  get(customerId: string): PanelState | undefined {
    return this.panels.get(customerId);
  }

  subscribe(customerId: string, listener: () => void): () => void {
    let set = this.listeners.get(customerId);
    if (!set) this.listeners.set(customerId, (set = new Set()));
    set.add(listener);
    return () => set.delete(listener);
  }

  /** Listen to every change, for the page's counters and leave guard. */
  subscribeAll(listener: () => void): () => void {
    this.globalListeners.add(listener);
    return () => this.globalListeners.delete(listener);
  }

  /** Return a number that changes with every change of any panel. */
  getVersion(): number {
    return this.version;
  }

  /** Customers whose edits are not saved yet, or failed to save. */
  unsavedCustomers(): string[] {
    return [...this.panels.entries()]
      .filter(([, panel]) => panel.dirty || panel.saveState === 'saving')
      .map(([customerId]) => customerId);
  }

  private update(customerId: string, change: (panel: PanelState) => PanelState): void {
    const panel = this.panels.get(customerId);
    if (!panel) return;
    this.panels.set(customerId, change(panel));
    this.version += 1;
    for (const listener of this.listeners.get(customerId) ?? []) listener();
    for (const listener of this.globalListeners) listener();
  }

  private emitGlobal(): void {
    this.version += 1;
    for (const set of this.listeners.values()) for (const listener of set) listener();
    for (const listener of this.globalListeners) listener();
  }

  /** Return the selections of a panel's draft that are no longer valid. */
  problemsOf(panel: PanelState): DraftProblems {
    const problems: DraftProblems = {};
    const { draft, saved } = panel;
    if (draft.ticketTypeId !== null && !this.ticketTypes.some((t) => t.id === draft.ticketTypeId)) {
      const name = saved?.ticketTypeId === draft.ticketTypeId ? saved.ticketTypeName : null;
      problems.ticketTypeId = `HaloPSA no longer has the ticket type ${name ? `“${name}”` : `with id ${draft.ticketTypeId}`}. Choose another.`;
    }
    if (
      panel.status === 'ready' &&
      draft.siteId !== null &&
      !panel.sites.some((s) => s.id === draft.siteId)
    ) {
      const name = saved?.siteId === draft.siteId ? saved.siteName : null;
      problems.siteId = `The site ${name ? `“${name}”` : draft.siteId} is no longer a site of this HaloPSA customer. Choose another, or none.`;
    }
    if (draft.userId !== null && panel.users && !panel.users.some((u) => u.id === draft.userId)) {
      const name = saved?.userId === draft.userId ? saved.userName : null;
      problems.userId = `The end user ${name ? `“${name}”` : draft.userId} is no longer a user of this site. Choose another, or none.`;
    }
    return problems;
  }

  // Loading.

  /** Load a panel's rule, groups and sites once, when it is first expanded. */
  ensureLoaded(customerId: string): void {
    if (this.panels.has(customerId)) return;
    const domains = this.domainsByCustomer.get(customerId) ?? [];
    this.panels.set(customerId, {
      status: 'loading',
      loadError: null,
      domains,
      groups: [],
      sites: [],
      users: null,
      usersError: null,
      saved: null,
      draft: draftOf(null, this.defaultTicketTypeId),
      dirty: false,
      saveState: 'idle',
      saveError: null,
      notes: [],
      busy: null,
    });
    this.emitOne(customerId);
    this.enqueueLoad(() => this.load(customerId));
  }

  private emitOne(customerId: string): void {
    this.version += 1;
    for (const listener of this.listeners.get(customerId) ?? []) listener();
    for (const listener of this.globalListeners) listener();
  }

  private enqueueLoad(task: () => Promise<void>): void {
    this.loadQueue.push(task);
    this.pumpLoads();
  }

  // Expanding thousands of panels at once must not send thousands of requests at once.
  private pumpLoads(): void {
    while (this.loadsRunning < LOAD_CONCURRENCY && this.loadQueue.length > 0) {
      const task = this.loadQueue.shift()!;
      this.loadsRunning += 1;
      void task().finally(() => {
        this.loadsRunning -= 1;
        this.pumpLoads();
      });
    }
  }

  private sitesOf(haloClientId: number, fresh = false): Promise<HaloSiteOption[]> {
    let sites = fresh ? undefined : this.sitesByClient.get(haloClientId);
    if (!sites) {
      sites = api
        .get<SitesResponse>(`/integrations/halopsa/sites?clientId=${haloClientId}`)
        .then((response) => response.sites);
      this.sitesByClient.set(haloClientId, sites);
      sites.catch(() => this.sitesByClient.delete(haloClientId));
    }
    return sites;
  }

  private async load(customerId: string): Promise<void> {
    const mapping = this.mappings.get(customerId);
    if (!mapping) return;
    try {
      const [rule, groups, sites] = await Promise.all([
        api.get<TicketRuleResponse>(`/integrations/halopsa/ticket-rules/${customerId}`),
        api.get<DomainGroupsResponse>(`/customers/${customerId}/groups`),
        this.sitesOf(mapping.haloClientId),
      ]);
      this.update(customerId, (panel) => ({
        ...panel,
        status: 'ready',
        groups: groups.groups,
        sites,
        saved: rule.rule,
        // An edit made while the panel loaded wins over the stored rule.
        draft: panel.dirty ? panel.draft : draftOf(rule.rule, this.defaultTicketTypeId),
        saveState: rule.rule ? 'saved' : panel.saveState,
      }));
      const siteId = this.panels.get(customerId)?.draft.siteId;
      if (siteId != null) await this.loadUsers(customerId, siteId);
    } catch (error) {
      this.update(customerId, (panel) => ({
        ...panel,
        status: 'failed',
        loadError: messageOf(error),
      }));
    }
  }

  /** Try a failed load again. */
  retryLoad(customerId: string): void {
    this.update(customerId, (panel) => ({ ...panel, status: 'loading', loadError: null }));
    this.enqueueLoad(() => this.load(customerId));
  }

  private async loadUsers(customerId: string, siteId: number): Promise<void> {
    this.update(customerId, (panel) => ({ ...panel, users: null, usersError: null }));
    try {
      const { users } = await api.get<UsersResponse>(
        `/integrations/halopsa/users?siteId=${siteId}`,
      );
      this.update(customerId, (panel) =>
        panel.draft.siteId === siteId ? { ...panel, users } : panel,
      );
    } catch (error) {
      this.update(customerId, (panel) => ({ ...panel, usersError: messageOf(error) }));
    }
  }

  // Editing.

  /**
   * Apply a change of the user's to a panel's draft and save it shortly after. The notes of
   * the last Resync go, because they describe the draft before this change.
   */
  change(customerId: string, edit: (draft: RuleDraft) => RuleDraft): void {
    this.update(customerId, (panel) => ({
      ...panel,
      draft: edit(panel.draft),
      dirty: true,
      saveState: 'waiting',
      saveError: null,
      notes: [],
    }));
    this.scheduleSave(customerId);
  }

  /** Choose a site, which clears the end user and loads the site's users. */
  chooseSite(customerId: string, siteId: number | null): void {
    this.change(customerId, (draft) => ({ ...draft, siteId, userId: null }));
    if (siteId === null) {
      this.update(customerId, (panel) => ({ ...panel, users: null, usersError: null }));
    } else {
      void this.loadUsers(customerId, siteId);
    }
  }

  /** Turn one target on or off. */
  toggle(customerId: string, list: TargetList, id: string, on: boolean): void {
    this.change(customerId, (draft) => ({
      ...draft,
      [list]: on ? [...new Set([...draft[list], id])] : draft[list].filter((item) => item !== id),
    }));
  }

  /** Select or clear every row of one list. */
  setAll(customerId: string, list: TargetList, ids: readonly string[]): void {
    this.change(customerId, (draft) => ({ ...draft, [list]: [...ids] }));
  }

  private scheduleSave(customerId: string): void {
    window.clearTimeout(this.timers.get(customerId));
    this.timers.set(
      customerId,
      window.setTimeout(() => {
        this.timers.delete(customerId);
        void this.save(customerId);
      }, SAVE_DELAY_MS),
    );
  }

  /** Return the reason a panel cannot be saved, or null. */
  blockerOf(panel: PanelState): string | null {
    if (panel.status !== 'ready') return 'It has not finished loading.';
    if (panel.draft.ticketTypeId === null) return 'Choose a ticket type.';
    const problems = Object.values(this.problemsOf(panel));
    return problems[0] ?? null;
  }

  /** Save a panel's draft now, after any save of it still running. Returns false on failure. */
  async save(customerId: string): Promise<boolean> {
    window.clearTimeout(this.timers.get(customerId));
    this.timers.delete(customerId);
    const running = this.saves.get(customerId);
    if (running) await running;

    const panel = this.panels.get(customerId);
    if (!panel || !panel.dirty) return true;
    if (this.blockerOf(panel)) {
      this.update(customerId, (current) => ({ ...current, saveState: 'failed' }));
      return false;
    }

    const draft = panel.draft;
    const body: TicketRuleRequest = {
      ticketTypeId: draft.ticketTypeId!,
      siteId: draft.siteId,
      userId: draft.userId,
      dnsDomainIds: draft.dns,
      thresholdDomainIds: draft.thresholdDomains,
      thresholdGroupIds: draft.thresholdGroups,
      forensicDomainIds: draft.forensic,
    };
    const attempt = (async () => {
      this.update(customerId, (current) => ({ ...current, saveState: 'saving', saveError: null }));
      try {
        const { rule } = await api.put<SavedTicketRuleResponse>(
          `/integrations/halopsa/ticket-rules/${customerId}`,
          body,
        );
        this.update(customerId, (current) => {
          // Edits made during the save stay in the draft and are saved next.
          const changedMeanwhile = current.draft !== draft;
          return {
            ...current,
            saved: rule,
            dirty: changedMeanwhile,
            saveState: changedMeanwhile ? 'waiting' : 'saved',
          };
        });
        if (this.panels.get(customerId)?.dirty) this.scheduleSave(customerId);
        return true;
      } catch (error) {
        const field =
          error instanceof ApiError &&
          (error.field === 'ticketTypeId' || error.field === 'siteId' || error.field === 'userId')
            ? error.field
            : null;
        this.update(customerId, (current) => ({
          ...current,
          saveState: 'failed',
          saveError: { field, message: messageOf(error) },
        }));
        return false;
      }
    })();
    this.saves.set(customerId, attempt);
    try {
      return await attempt;
    } finally {
      this.saves.delete(customerId);
    }
  }

  /** Save every panel with unsaved edits now; returns the customers that could not be saved. */
  async saveAll(): Promise<string[]> {
    const pending = this.unsavedCustomers();
    const results = await Promise.all(
      pending.map(async (id) => [id, await this.save(id)] as const),
    );
    return results.filter(([, saved]) => !saved).map(([id]) => id);
  }

  // Resync.

  /**
   * Reload one customer's domains and groups from dmarcdesk, and the ticket types, sites and
   * end users from HaloPSA. Valid choices stay. A ticket type, site or user that is no longer
   * valid is marked, and a domain or group that no longer exists leaves the selection with a
   * note that says so.
   */
  async resync(customerId: string): Promise<void> {
    const mapping = this.mappings.get(customerId);
    const panel = this.panels.get(customerId);
    if (!mapping || !panel) return;
    this.update(customerId, (current) => ({
      ...current,
      busy: 'Reloading domains, groups, and ticket types, sites and users from HaloPSA…',
      notes: [],
    }));
    try {
      const [domains, groups, types, sites] = await Promise.all([
        api.get<DomainsResponse>(`/customers/${customerId}/domains`),
        api.get<DomainGroupsResponse>(`/customers/${customerId}/groups`),
        api.get<TicketTypesResponse>('/integrations/halopsa/ticket-types'),
        this.sitesOf(mapping.haloClientId, true),
      ]);
      this.ticketTypes = types.ticketTypes;
      this.defaultTicketTypeId = types.defaultTicketTypeId;
      this.emitGlobal();

      const domainIds = new Set(domains.domains.map((domain) => domain.id));
      const groupIds = new Set(groups.groups.map((group) => group.id));
      const notes: string[] = [];
      let removed = false;
      this.update(customerId, (current) => {
        const keep = (ids: string[], known: Set<string>) => ids.filter((id) => known.has(id));
        const draft: RuleDraft = {
          ...current.draft,
          dns: keep(current.draft.dns, domainIds),
          thresholdDomains: keep(current.draft.thresholdDomains, domainIds),
          thresholdGroups: keep(current.draft.thresholdGroups, groupIds),
          forensic: keep(current.draft.forensic, domainIds),
        };
        const lostRows = selectedRows(current.draft) - selectedRows(draft);
        if (lostRows > 0) {
          removed = true;
          notes.push(
            `${count(lostRows, 'selected alert row')} ${lostRows === 1 ? 'was' : 'were'} for domains or groups that no longer exist, so ${lostRows === 1 ? 'it is' : 'they are'} no longer selected.`,
          );
        }
        return {
          ...current,
          status: 'ready',
          loadError: null,
          domains: domains.domains,
          groups: groups.groups,
          sites,
          draft: removed ? draft : current.draft,
          dirty: current.dirty || removed,
          saveState: removed ? 'waiting' : current.saveState,
        };
      });
      const siteId = this.panels.get(customerId)?.draft.siteId;
      if (siteId != null) await this.loadUsers(customerId, siteId);

      const problems = Object.values(this.problemsOf(this.panels.get(customerId)!));
      if (problems.length > 0) {
        notes.push(
          `${count(problems.length, 'choice')} ${problems.length === 1 ? 'is' : 'are'} no longer valid and marked below.`,
        );
      }
      if (notes.length === 0) notes.push('Resync finished: every choice is still valid.');
      this.update(customerId, (current) => ({ ...current, busy: null, notes }));
      if (removed) this.scheduleSave(customerId);
    } catch (error) {
      this.update(customerId, (current) => ({
        ...current,
        busy: null,
        notes: [`Resync failed: ${messageOf(error)}`],
      }));
    }
  }

  /** Stop the pending save timers when the page closes. */
  dispose(): void {
    for (const timer of this.timers.values()) window.clearTimeout(timer);
    this.timers.clear();
  }
}
