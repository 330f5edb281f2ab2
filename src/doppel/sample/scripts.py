"""Hand-written exchanges placed once each in the sample: formatted text, links, contact details.

They give every reader and privacy feature something real to chew on: entity lists (bold, italic,
link, text_link, mention, hashtag, code), phone numbers and emails both as entities and as plain
text, one Luhn-valid card number, and a pinned plan in the group. `("pin", "")` pins the line
before it. The text is already in each person's style.
"""

from __future__ import annotations

Exchange = list[tuple[str, str]]

SCRIPTED: dict[str, list[Exchange]] = {
    "sam": [
        [("sam", "My new number is <phone:+1 415 555 0142>, in case you need it. The old one "
                 "stopped working last week, which was rather inconvenient."),
         ("alex", "saved it 👍")],
        [("sam", "If you need anything for the project, my colleague Anna is at "
                 "anna.berg@example.com, and she is genuinely lovely to work with."),
         ("alex", "oh nice thanks"), ("alex", "ill email her tmrw")],
        [("sam", "You <bold:really> have to read <text_link:the article I mentioned|"
                 "https://www.theatlantic.com/technology/archive/2024/03/> before Friday, "
                 "because I would love to hear what you think of it."),
         ("alex", "ok ok ill read it lol")],
    ],
    "dima": [
        [("dima", "Записывай мой новый номер: <phone:+7 916 555-12-34>"),
         ("alex", "записал 👍")],
        [("dima", "Почта для пропуска в офис: dima.volkov@example.ru"),
         ("alex", "ок скинул туда лол")],
        [("dima", "Вот тот ролик, про который говорил <link:https://youtu.be/kQ7bW3xP1aE>"),
         ("alex", "ахахах огонь")],
    ],
    "jake": [
        [("jake", "CALL ME AT 628-555-0177 IF YOU GET LOST!!!"), ("alex", "will do lol")],
        [("jake", "CHECK THIS OUT!!!"), ("jake",
          "<link:https://www.youtube.com/watch?v=3fZq8LwT9mY>"),
         ("alex", "lmaooo"), ("alex", "how did he even land that 😂")],
    ],
    "nora": [
        [("nora", "work email: <email:nora.lind@example.com>."), ("alex", "got it")],
        [("nora", "tickets paid. card <bank_card:4539 1488 0343 6467>. send 45 back."),
         ("alex", "sending now lol"), ("nora", "thanks.")],
    ],
    "priya": [
        [("priya",
          "omg follow <mention:@foodie_priya> for the best ramen pics 😍🍜 <hashtag:#foodie>"),
         ("alex", "followed lol")],
        [("priya", "the restaurant's number is (415) 555-0199 if you want to book 😊"),
         ("alex", "booking now haha")],
        [("priya",
          "this is <italic:the> recipe 🤤 <link:https://www.bbcgoodfood.com/recipes/ramen>"),
         ("alex", "saving this lol")],
    ],
    "group": [
        [("sam", "<bold:Plan>: Saturday at 7 at Luigi's, then bowling. Please do not be late."),
         ("pin", ""), ("jake", "<mention:@alexmorgan> YOU'RE ON SNACKS!!!"),
         ("alex", "ugh fine lol")],
        [("sam", "The address is 12 Harbour Street, flat 4. My number is "
                 "<phone:+1 415 555 0142> if anyone gets lost on the way."),
         ("priya", "see you there!! 🎉✨")],
        [("alex", "just ran <code:git push --force> on a friday lol"),
         ("jake", "BRO!!!"), ("nora", "brave.")],
    ],
}

# Recurring facts: people, pets, plans, places and inside jokes that come back across months and
# chats, so memory has something to find (a later mention's words occur in an earlier one in the
# same scope). Each chat's list is in time order: the n-th exchange lands in an earlier session
# than the (n+1)-th. `FACT_WORDS` names the word each fact turns on, for the tests and the bench.
FACTS: dict[str, list[Exchange]] = {
    "sam": [
        [("sam", "I finally adopted a dog last weekend: a corgi called Biscuit, and he is already "
                 "chewing my shoes."), ("alex", "omg biscuit!! send pics lol")],
        [("sam", "My sister Clara is visiting from Edinburgh in May, and I would love for you to "
                 "meet her."), ("alex", "clara from edinburgh! yes def")],
        [("sam", "Biscuit ate an entire sock yesterday, so we spent the evening at the vet on Elm "
                 "Road."), ("alex", "poor biscuit lol"), ("alex", "is he ok")],
        [("sam", "Clara lands on the 18th of May, so please keep that Saturday free for the "
                 "picnic."), ("alex", "saturday the 18th, noted lol")],
    ],
    "dima": [
        [("dima", "Мы купили дачу под Звенигородом, приезжай летом"),
         ("alex", "звенигород, ого, приеду лол")],
        [("dima", "Кот Барсик опять сбежал на даче, искали два часа"), ("alex", "барсик ахаха")],
        [("dima", "В субботу шашлыки на даче в Звенигороде, ты с нами?"),
         ("alex", "конечно лол"), ("alex", "барсика не теряйте")],
    ],
    "jake": [
        [("jake", "MY BAND THE LOUD PELICANS GOT A GIG AT THE BLUE DOOR!!!"),
         ("alex", "loud pelicans lets go lol")],
        [("jake", "LOUD PELICANS AT THE BLUE DOOR WAS INSANE!!! 200 PEOPLE!!!"),
         ("alex", "told you lol"), ("alex", "next gig when")],
    ],
    "nora": [
        [("nora", "signed up for the rotterdam marathon. april 14."),
         ("alex", "rotterdam!! you're insane lol")],
        [("nora", "rotterdam done. 3:52."), ("alex", "3:52!!! legend lol")],
    ],
    "priya": [
        [("priya", "my cat mochi knocked my monstera off the shelf again 😭🐱"),
         ("alex", "mochi chaos lol")],
        [("priya", "booked lisbon for june!! 🇵🇹✈️ five days of pastel de nata 😍"),
         ("alex", "lisbon!! so jealous lol")],
        [("priya", "lisbon in 10 days and mochi is staying with my mum 🥹✨"),
         ("alex", "mochi holiday lol")],
    ],
    "group": [
        [("jake", "NOBODY ORDER THE PINEAPPLE PIZZA. WE ALL REMEMBER!!!"),
         ("alex", "the pineapple incident lol"), ("nora", "never again.")],
        [("sam", "Biscuit is coming to the picnic too, so please keep your sandwiches out of "
                 "reach."), ("priya", "BISCUIT!! 😍🐶"), ("alex", "lol biscuit vs sandwiches")],
        [("priya", "who's ordering?? just no pineapple pizza 😂🍍"),
         ("alex", "pineapple incident 2.0 lol")],
    ],
}
# questions that name no fact word: (question, whose scope, the word a memory should hold)
FACT_QUESTIONS = (("how is your corgi doing?", "Sam Carter", "biscuit"),
                  ("when does your sister get here?", "Sam Carter", "clara"),
                  ("how did the marathon go?", "Nora Lind", "rotterdam"),
                  ("как там дача?", "Dima Volkov", "звенигород"),
                  ("when is your band playing next?", "Jake Rivera", "pelicans"),
                  ("how is your cat?", "Priya Shah", "mochi"))
FACT_WORDS = ("biscuit", "clara", "звенигород", "барсик", "pelicans", "rotterdam",
              "mochi", "lisbon", "pineapple")


def with_facts(key: str) -> list[Exchange]:
    """A chat's scripted exchanges and its facts, interleaved (each list keeps its order)."""
    scripted, facts = SCRIPTED.get(key, []), FACTS.get(key, [])
    merged: list[Exchange] = []
    for index in range(max(len(scripted), len(facts))):
        merged += facts[index:index + 1] + scripted[index:index + 1]
    return merged
