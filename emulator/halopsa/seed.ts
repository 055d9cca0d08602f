// Deterministic seed data that looks like a small MSP's HaloPSA instance. Each client company
// has one to three sites, several contacts per site and a "General User", and one client is
// inactive. There are billing items, ticket types (one of which rejects API creation), and
// some existing licences and tickets. The same options always produce the same records.
import { UNSET_DATE, toDotNetDate } from './dates.ts';
import {
  CITIES,
  COMPANY_PREFIXES,
  COMPANY_SECTORS,
  FIRST_NAMES,
  LEGAL_SUFFIXES,
  SURNAMES,
  TICKET_SUMMARIES,
} from './seed-names.ts';
import type { DataStore } from './store.ts';
import type { JsonRecord } from './types.ts';

/** How much seed data to create. */
export interface SeedOptions {
  /** Number of client companies; default 40. */
  clients?: number;
  /** Seed of the pseudo-random generator that picks names and counts; default 1. */
  randomSeed?: number;
}

export const DEFAULT_SEED_CLIENTS = 40;

/** The message HaloPSA returns when a ticket type needs CAB approval set up by hand. */
export const CAB_REJECTION_MESSAGE = 'CODE:APP03/2 Please select the CAB members to approve';

// Seed records carry dates in early 2026 so that they do not depend on when the emulator runs.
const SEED_EPOCH_MS = Date.UTC(2026, 0, 5, 9, 0, 0);
const DAY_MS = 86_400_000;

const ITEMS: readonly JsonRecord[] = [
  { name: 'Microsoft 365 Business Basic', baseprice: 6.0, costprice: 4.8, recurring: true },
  { name: 'Microsoft 365 Business Standard', baseprice: 12.5, costprice: 10.0, recurring: true },
  { name: 'Microsoft 365 Business Premium', baseprice: 22.0, costprice: 17.6, recurring: true },
  { name: 'Cloud Backup (per user)', baseprice: 4.0, costprice: 1.5, recurring: true },
  { name: 'DMARC Monitoring (per domain)', baseprice: 5.0, costprice: 0.0, recurring: true },
  { name: 'Endpoint Protection (per device)', baseprice: 3.5, costprice: 1.2, recurring: true },
  { name: 'Managed Firewall', baseprice: 45.0, costprice: 20.0, recurring: true },
  { name: 'Remote Support (hourly)', baseprice: 85.0, costprice: 0.0, recurring: false },
  { name: 'Laptop Build and Setup', baseprice: 120.0, costprice: 0.0, recurring: false },
];

// "Alert" is deliberately not first: dmarcdesk preselects it by name, not by position.
const TICKET_TYPES = ['Incident', 'Service Request', 'Problem', 'Change Request', 'Alert', 'Quote'];
const API_REJECTING_TICKET_TYPE = 'Change Request';

/**
 * Stock action outcomes. Outcome 7 is "Internal Note" on stock HaloPSA; the other ids and
 * names are the emulator's choice.
 */
const OUTCOMES = [
  'Email User',
  'Update',
  'Phone Call',
  'Change Status',
  'Logged',
  'Closed',
  'Internal Note',
];

/** Adds the stock action outcomes, which every instance has even without seed data. */
export function seedOutcomes(data: DataStore): void {
  OUTCOMES.forEach((name, index) => data.outcomes.push({ id: index + 1, name }));
}

/** Fills an empty store with the seed data. */
export function seedData(data: DataStore, options: SeedOptions = {}): void {
  const random = createRandom(options.randomSeed ?? 1);
  const clientCount = options.clients ?? DEFAULT_SEED_CLIENTS;

  for (const [index, item] of ITEMS.entries()) {
    data.tables.item.insert({
      name: item.name,
      description: `${String(item.name)} billed to the customer`,
      baseprice: item.baseprice,
      costprice: item.costprice,
      isrecurringitem: item.recurring,
      recurringprice: item.recurring === true ? item.baseprice : 0,
      internalreference: `ITEM-${String(index + 1).padStart(3, '0')}`,
    });
  }

  for (const name of TICKET_TYPES) {
    const type = data.tables.tickettype.insert({
      name,
      visible: true,
      cancreate: true,
      agentscanselect: true,
      enduserscanselect: name !== 'Alert',
      default_sla: -1,
    });
    if (name === API_REJECTING_TICKET_TYPE) {
      data.apiRejectingTicketTypes.set(type.id as number, CAB_REJECTION_MESSAGE);
    }
    data.defaultTicketTypeId ??= type.id as number;
  }

  const names = { companies: new UniqueNames(), domains: new UniqueNames() };
  // One client is inactive; HaloPSA hides inactive clients unless includeinactive=true.
  const inactiveIndex = clientCount >= 2 ? Math.min(6, clientCount - 1) : -1;
  for (let index = 0; index < clientCount; index += 1) {
    seedClient(data, random, names, index, index === inactiveIndex);
  }
}

function seedClient(
  data: DataStore,
  random: () => number,
  names: { companies: UniqueNames; domains: UniqueNames },
  index: number,
  inactive: boolean,
): void {
  const prefix = pick(random, COMPANY_PREFIXES);
  const sector = pick(random, COMPANY_SECTORS);
  const suffix = pick(random, LEGAL_SUFFIXES);
  const fullName = `${prefix} ${sector}${suffix === '' ? '' : ` ${suffix}`}`;
  const name = names.companies.claim(fullName, (attempt) => `${fullName} ${attempt}`);
  const tld = random() < 0.7 ? 'co.uk' : 'com';
  const label = `${slug(prefix)}${slug(sector.split(' ')[0] ?? sector)}`;
  const domain = names.domains.claim(`${label}.${tld}`, (attempt) => `${label}${attempt}.${tld}`);
  const created = SEED_EPOCH_MS - (400 - (index % 400)) * DAY_MS;

  const client = data.tables.client.insert({
    name,
    inactive,
    website: `https://www.${domain}`,
    notes: '',
    is_vip: false,
    datecreated: toDotNetDate(created),
  });
  const clientId = client.id as number;

  const siteCount = 1 + Math.floor(random() * 3);
  const siteIds: number[] = [];
  const cities = [...CITIES];
  for (let siteIndex = 0; siteIndex < siteCount; siteIndex += 1) {
    const city = cities.splice(Math.floor(random() * cities.length), 1)[0] ?? 'Branch';
    const site = data.tables.site.insert({
      name: siteIndex === 0 ? 'Head Office' : `${city} Office`,
      client_id: clientId,
      inactive: false,
      phonenumber: `0${100 + Math.floor(random() * 900)} ${String(Math.floor(random() * 1e6)).padStart(6, '0')}`,
      emaildomain: domain,
      isinvoicesite: siteIndex === 0,
    });
    siteIds.push(site.id as number);
  }
  const mainSiteId = siteIds[0] as number;
  data.tables.client.replace({ ...client, id: clientId, main_site_id: mainSiteId });

  // Every HaloPSA client has a "General User" contact that tickets can fall back on.
  data.tables.users.insert({
    name: 'General User',
    firstname: 'General',
    surname: 'User',
    emailaddress: '',
    site_id: mainSiteId,
    client_id: clientId,
    inactive: false,
    isserviceaccount: false,
  });
  const emails = new UniqueNames();
  const mainSiteUserIds: number[] = [];
  for (const siteId of siteIds) {
    const userCount = 2 + Math.floor(random() * 4);
    for (let userIndex = 0; userIndex < userCount; userIndex += 1) {
      const firstname = pick(random, FIRST_NAMES);
      const surname = pick(random, SURNAMES);
      const local = `${slug(firstname)}.${slug(surname)}`;
      const user = data.tables.users.insert({
        name: `${firstname} ${surname}`,
        firstname,
        surname,
        emailaddress: emails.claim(
          `${local}@${domain}`,
          (attempt) => `${local}${attempt}@${domain}`,
        ),
        login: '',
        site_id: siteId,
        client_id: clientId,
        inactive: false,
        isserviceaccount: false,
      });
      if (siteId === mainSiteId) mainSiteUserIds.push(user.id as number);
    }
  }

  if (!inactive) seedLicences(data, random, clientId, created);
  // A handful of existing tickets, one of them soft-deleted, on the first clients.
  if (index < 10) seedTicket(data, random, clientId, mainSiteId, mainSiteUserIds, index);
}

function seedLicences(
  data: DataStore,
  random: () => number,
  clientId: number,
  start: number,
): void {
  const items = data.tables.item.all();
  const licensed = items.filter((item) => String(item.name).startsWith('Microsoft 365'));
  const backup = items.find((item) => item.name === 'Cloud Backup (per user)');
  const picks = [random() < 0.6 ? pick(random, licensed) : undefined];
  if (random() < 0.3) picks.push(backup);

  for (const item of picks) {
    if (item === undefined) continue;
    data.tables.softwarelicence.insert({
      name: item.name,
      client_id: clientId,
      site_id: -1,
      item_id: item.id,
      count: 3 + Math.floor(random() * 38),
      start_date: toDotNetDate(start + 30 * DAY_MS),
      end_date: UNSET_DATE,
      notes: '',
    });
  }
}

function seedTicket(
  data: DataStore,
  random: () => number,
  clientId: number,
  siteId: number,
  userIds: number[],
  index: number,
): void {
  const types = data.tables.tickettype.all();
  const type = types.find(
    (candidate) => candidate.name === (index % 2 === 0 ? 'Incident' : 'Service Request'),
  );
  const occurred = toDotNetDate(SEED_EPOCH_MS - (10 - index) * DAY_MS);
  const summary = TICKET_SUMMARIES[index % TICKET_SUMMARIES.length] ?? 'Support request';
  const deleted = index === 2;
  const ticket = data.tables.tickets.insert({
    summary,
    details: `${summary}. Reported by phone.`,
    tickettype_id: type?.id,
    client_id: clientId,
    site_id: siteId,
    user_id: userIds.length > 0 ? pick(random, userIds) : undefined,
    status_id: 1,
    priority_id: 3,
    dateoccurred: occurred,
    deleted,
    deleted_date: deleted ? toDotNetDate(SEED_EPOCH_MS - DAY_MS) : UNSET_DATE,
    hasbeenclosed: false,
    dateclosed: UNSET_DATE,
  });
  data.insertAction(ticket.id as number, {
    outcome: 'Logged',
    outcome_id: 5,
    note: String(ticket.details),
    datetime: occurred,
    hiddenfromuser: false,
  });
}

/** Hands out each name once; a repeat gets the first free numbered variant. */
class UniqueNames {
  private readonly used = new Set<string>();

  claim(wanted: string, numbered: (attempt: number) => string): string {
    let candidate = wanted;
    for (let attempt = 2; this.used.has(candidate.toLowerCase()); attempt += 1) {
      candidate = numbered(attempt);
    }
    this.used.add(candidate.toLowerCase());
    return candidate;
  }
}

function slug(text: string): string {
  return text.toLowerCase().replace(/[^a-z0-9]/g, '');
}

function pick<T>(random: () => number, values: readonly T[]): T {
  const value = values[Math.floor(random() * values.length)];
  if (value === undefined) throw new Error('pick needs a non-empty list of values');
  return value;
}

/** Returns a xorshift32 generator of numbers in [0, 1): small, fast and reproducible. */
function createRandom(seed: number): () => number {
  let state = seed >>> 0 || 1;
  return () => {
    state ^= state << 13;
    state >>>= 0;
    state ^= state >>> 17;
    state ^= state << 5;
    state >>>= 0;
    return state / 2 ** 32;
  };
}
