#!/usr/bin/env python3
"""Write the task classifier's labelled data (tasks.jsonl): {"text", "label"} lines.

Made for this project from hand-written templates and slot values, combined by a seeded random
generator (so the file is reproducible: `python3 data/tasks/generate.py`). Each label has at
least 150 distinct examples, short and long, with other languages where the task is language-bound
(translation, grammar, FAQ, billing, upset customers). Templates avoid sharing telltale words
across labels only as much as real requests do.
"""
import json
import random
from pathlib import Path

rng = random.Random(20261129)

PRODUCTS = ["the mobile app", "our dashboard", "the API", "the desktop client", "the billing portal", "the router", "my account", "the export feature", "single sign-on", "the webhook integration"]
LANGS = ["French", "German", "Spanish", "Italian", "Japanese", "Portuguese", "Dutch", "Polish", "Korean", "Chinese"]
CODE_LANGS = ["Python", "Rust", "TypeScript", "Go", "Java", "SQL", "C#", "Ruby", "Kotlin", "Bash"]
TOPICS = ["remote work", "our new pricing", "data privacy", "the quarterly results", "climate-friendly shipping", "onboarding new hires", "the product launch", "customer loyalty", "open-source licensing", "team offsites"]
SNIPPETS = ["def add(a,b):\n  return a+b", "fn main(){let x=1;println!(\"{}\",x);}", "SELECT * FROM users WHERE id=1", "const f=(x)=>{return x*2}", "for i in range(10): print(i)", "if(a==b){c++;}else{d--;}"]

T = {
 "faq": [
  "What are your opening hours?", "How do I reset my password?", "Do you ship to {country}?", "Is there a free trial for {product}?",
  "Where can I find the documentation for {product}?", "Can I use {product} offline?", "What file formats does {product} support?",
  "How many users can I add to a team?", "Do you have a student discount?", "Is {product} available on Android?",
  "¿Cuál es el horario de atención?", "Comment puis-je changer mon adresse e-mail ?", "Wie lange dauert der Versand nach {country}?",
  "What is the difference between the Basic and Pro plans?", "Can I change my username later?", "Does {product} support dark mode?",
 ],
 "billing": [
  "I was charged twice this month for {product}.", "Can I get a refund for my last invoice?", "How do I update my credit card?",
  "Why did my subscription price go up?", "Please send me a VAT invoice for {month}.", "I want to switch from monthly to annual billing.",
  "My payment failed but the money left my account.", "Cancel my subscription and stop charging me.", "Where can I download past invoices?",
  "The invoice shows the wrong company name, please fix it.", "J'ai été facturé deux fois ce mois-ci.", "Ich möchte eine Rückerstattung für {month}.",
  "Do you accept PayPal or bank transfer for {product}?", "I was billed for 10 seats but we only use {n}.",
 ],
 "troubleshooting": [
  "{product} crashes when I open a large file.", "I get error {code} when I try to log in.", "The sync has been stuck at 99% for an hour.",
  "After the update, {product} won't start on my laptop.", "Notifications stopped working on my phone.", "The page keeps loading forever in Chrome.",
  "Uploads fail with a timeout after about 30 seconds.", "I can't connect {product} to our SSO provider, it says invalid certificate.",
  "The export produces an empty CSV file.", "Webhooks are not being delivered since yesterday.", "It says 'permission denied' when I open the shared folder.",
  "The app freezes whenever I switch accounts.", "Login loops back to the sign-in page on Safari.",
 ],
 "upset_customer": [
  "This is the third time {product} broke this week and I am fed up!", "Your support is useless, nobody has answered me in five days.",
  "I am extremely disappointed, you lost all my data.", "Absolutely unacceptable service, I want to speak to a manager NOW.",
  "I've been a loyal customer for years and this is how you treat me?", "Fix this immediately or I'm cancelling and telling everyone.",
  "Worst experience ever. I'm furious about the hidden fees.", "C'est inadmissible, personne ne répond à mes messages !",
  "Ich bin wirklich verärgert, das ist schon wieder kaputt.", "You people keep ignoring me and I'm losing money because of {product}.",
  "Honestly I'm so angry right now, your update wiped my settings.", "Stop sending me template answers and actually help me!",
 ],
 "marketing_copy": [
  "Write a catchy tagline for {product}.", "Give me three short Instagram captions about {topic}.", "Draft a one-line slogan for our summer sale.",
  "Write a punchy email subject line announcing {product}.", "Create a 20-word ad for {topic}.", "Suggest five headlines for a landing page about {product}.",
  "Write a tweet announcing our new feature in {product}.", "Give me a short, playful call-to-action for the signup button.",
  "Rewrite this banner text to be more exciting: 'New features available'.", "Write a two-sentence product blurb for {product}.",
 ],
 "long_form": [
  "Write a 1500-word blog post about {topic}.", "Draft a detailed whitepaper on {topic} for enterprise buyers.",
  "Write a long-form article explaining {topic} to beginners, with sections and examples.", "Compose an in-depth brand story for our company, about 1000 words.",
  "Write a complete chapter of a guide on {topic}.", "Create a thorough case study about how a customer used {product}, with challenge, solution and results.",
  "Write an essay on the future of {topic}, around 2000 words.", "Draft our brand voice guidelines with tone, vocabulary and examples.",
  "Write a detailed newsletter feature about {topic} for our readers.", "Produce a comprehensive FAQ-style article about {product}, at least ten sections.",
 ],
 "code_formatting": [
  "Format this {lang} code properly:\n{snippet}", "Add comments to this function:\n{snippet}", "Fix the indentation in this {lang} snippet:\n{snippet}",
  "Add docstrings to my {lang} functions.", "Rename the variables in this code to be more descriptive:\n{snippet}", "Make this {lang} code follow the style guide:\n{snippet}",
  "Convert tabs to spaces and align this code:\n{snippet}", "Add type annotations to this {lang} code:\n{snippet}", "Write inline comments explaining each line:\n{snippet}",
  "Prettify this JSON: {{\"a\":1,\"b\":[1,2,3]}}",
 ],
 "code_generation": [
  "Write a {lang} function that reverses a linked list.", "Refactor this {lang} code to remove duplication:\n{snippet}", "Why does this throw a null pointer exception?\n{snippet}",
  "Implement a binary search in {lang}.", "Here is a stack trace, what's the bug?\nTraceback (most recent call last): File \"app.py\", line 12, in <module>",
  "Write a REST endpoint in {lang} that returns the current time.", "Debug this: my {lang} loop never terminates.\n{snippet}", "Generate unit tests for this function:\n{snippet}",
  "Write a SQL query that returns the top 5 customers by revenue.", "Create a {lang} class for a bank account with deposit and withdraw.", "Optimise this code, it's too slow:\n{snippet}",
 ],
 "translation": [
  "Translate this into {language}: 'Thank you for your order.'", "How do you say 'good morning' in {language}?", "Translate the following paragraph to {language}: {sentence}",
  "Traduis en anglais : « Merci pour votre patience. »", "Übersetze bitte ins Englische: 'Wir freuen uns auf Ihren Besuch.'", "Traduce al inglés: 'El pedido llegará mañana.'",
  "Can you translate our welcome email into {language}?", "Please provide the {language} version of: {sentence}", "What's the {language} translation of 'see you soon'?",
  "英語に翻訳してください：「ご注文ありがとうございます」", "Translate from {language} to English: {foreign}",
 ],
 "grammar": [
  "Fix the grammar in this sentence: '{bad}'", "Proofread my paragraph: {bad}", "Is this sentence correct? '{bad}'", "Correct the spelling mistakes: '{bad}'",
  "Make this sound more natural: '{bad}'", "Corrige les fautes : « {badfr} »", "Korrigiere bitte die Grammatik: '{badde}'", "Improve the style of this sentence without changing the meaning: '{bad}'",
  "Check my punctuation: '{bad}'", "Can you edit this for clarity and grammar? {bad}",
 ],
 "summarisation": [
  "Summarise this article in three bullet points: {long}", "Give me a TL;DR of the following: {long}", "Condense these meeting notes into key decisions: {long}",
  "Write a one-paragraph summary of: {long}", "What are the main points of this text? {long}", "Summarize the thread below for my manager: {long}",
  "Résume ce texte en deux phrases : {long}", "Shorten this report to 100 words: {long}",
 ],
 "classification": [
  "Is this review positive or negative? '{review}'", "Classify the sentiment of: '{review}'", "Label this ticket as bug, feature request or question: '{ticket}'",
  "What category does this email belong to: sales, support or spam? '{ticket}'", "Rate the sentiment from 1 to 5: '{review}'", "Tag this message with its topic: '{ticket}'",
  "Is the customer happy in this message? '{review}'", "Detect the language and tone of: '{review}'",
 ],
 "extraction": [
  "Extract the names and email addresses from this text: {contact}", "Pull the invoice number, date and total from: {invoice}", "List all dates mentioned in: {long}",
  "Return the order ID and product names as JSON: {invoice}", "Find the phone numbers in this email: {contact}", "Extract the company, role and start date from this CV snippet: {contact}",
  "Get all the URLs from this message: see https://example.com/a and https://example.org/b", "Parse this address into street, city and postcode: 12 Rue de la Paix, 75002 Paris",
 ],
 "reasoning": [
  "What is {a} times {b}?", "Solve for x: {a}x + {b} = {c}", "If a train leaves at 3pm going 80 km/h, when does it arrive {c} km away?", "Prove that the sum of two even numbers is even.",
  "A shop sells apples at {a} for {b} euros. How much do {c} apples cost?", "What is the probability of rolling two sixes with two dice?", "Which is larger, 2^{a} or {b}^2? Explain.",
  "Three friends split a bill of {c} dollars with a 15% tip. How much does each pay?", "Is {c} a prime number? Show your reasoning.", "Calculate the compound interest on {c} at {a}% for {b} years.",
 ],
}

FILL = {
 "product": PRODUCTS, "country": ["Canada", "Japan", "Brazil", "Germany", "Australia", "India", "Mexico", "Norway"],
 "month": ["January", "March", "June", "September", "November"], "n": [str(i) for i in range(2, 9)],
 "code": ["E1042", "500", "AUTH_401", "0x80070005", "ERR_TIMEOUT", "403"], "topic": TOPICS, "lang": CODE_LANGS, "snippet": SNIPPETS,
 "language": LANGS, "sentence": ["Our office will be closed on Monday.", "The meeting has been moved to Thursday.", "Your package is on its way.", "We value your feedback."],
 "foreign": ["Bonjour, je voudrais réserver une table.", "Ich habe eine Frage zu meiner Bestellung.", "Hola, ¿cómo estás?", "Grazie mille per l'aiuto."],
 "bad": ["me and him goes to the store yesterday", "their going too the park tomorow", "i has three apple", "she dont like it no more", "the datas is wrong, we should of checked"],
 "badfr": ["je suis aller au magasin hier", "ils a mangé les pomme"], "badde": ["ich habe gestern nach Hause gegangen", "das ist der Buch von mein Bruder"],
 "long": ["The team met on Tuesday to review the roadmap. Engineering asked for two more weeks for the payments refactor; design presented the new onboarding flow; sales reported a 12% increase in trials. Decisions: delay the launch to May, hire one more designer, and run a pricing experiment in March."] * 3 + ["Customers wrote in about slow exports, confusing invoices and the new dashboard. Support resolved 80% within a day. The biggest complaint was the lack of dark mode, followed by SSO setup problems for enterprise accounts."],
 "review": ["The product is fantastic, setup took five minutes!", "Terrible, it broke after a day.", "It's okay, nothing special.", "Love the new update, great job team.", "Support never answered, very disappointed."],
 "ticket": ["The export button does nothing when clicked.", "Could you add a dark mode?", "How do I invite my colleague?", "WIN A FREE IPHONE NOW!!!"],
 "contact": ["Contact Jane Doe at jane.doe@acme.com or +1 555 0100; Bob Li (bob@li.dev) starts as CTO on 2026-02-01."],
 "invoice": ["Invoice INV-2291 dated 2026-11-03, order #88412: 2x Widget Pro, 1x Cable Kit, total EUR 149.90."],
 "a": [str(i) for i in range(3, 19)], "b": [str(i) for i in range(2, 13)], "c": [str(i) for i in (97, 120, 240, 331, 450, 1000, 1024)],
}

PREFIXES = ["", "", "", "Hi, ", "Hello! ", "Quick question: ", "Please help. ", "Hey team, ", "Good morning. "]
SUFFIXES = ["", "", "", " Thanks!", " Thank you in advance.", " Cheers.", " It's urgent.", " Best regards, Sam"]

def render(template):
    out = template
    for key, values in FILL.items():
        while "{" + key + "}" in out:
            out = out.replace("{" + key + "}", rng.choice(values), 1)
    return out.replace("{{", "{").replace("}}", "}")

def main():
    rows = []
    for label, templates in T.items():
        seen = set()
        tries = 0
        while len(seen) < 170 and tries < 20000:
            tries += 1
            text = rng.choice(PREFIXES) + render(rng.choice(templates)) + rng.choice(SUFFIXES)
            if rng.random() < 0.15:
                # Longer prompts: a second request of the same kind, or context before it.
                text = text + " " + render(rng.choice(templates))
            if text not in seen:
                seen.add(text)
                rows.append({"text": text, "label": label})
        assert len(seen) >= 150, (label, len(seen))
    rng.shuffle(rows)
    out = Path(__file__).with_name("tasks.jsonl")
    out.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
    counts = {}
    for r in rows:
        counts[r["label"]] = counts.get(r["label"], 0) + 1
    print(f"{len(rows)} examples in {out.name}: {counts}")

if __name__ == "__main__":
    main()
